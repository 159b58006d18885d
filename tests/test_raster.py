"""The CPU Gaussian rasterizer against a brute-force per-pixel reference (values and gradients)."""

from __future__ import annotations

import torch

from laser_gs.backends.gsplat.raster import ALPHA_MAX, ALPHA_MIN, T_MIN, project, quat_to_rotmat, rasterize

W, H = 40, 28


def _scene(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=g) * 2 - 1, 2 + 2 * torch.rand(n, 1, generator=g)], 1)
    quats = torch.randn(n, 4, generator=g)
    scales = 0.05 + 0.15 * torch.rand(n, 3, generator=g)
    opac = 0.2 + 0.79 * torch.rand(n, generator=g)
    colors = torch.rand(n, 5, generator=g)
    K = torch.tensor([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    viewmat = torch.eye(4)
    return means, quats, scales, opac, colors, viewmat, K


def _brute_force(means, quats, scales, opac, colors, viewmat, K, bg):
    """Per pixel, per Gaussian in depth order: the compositing rule written out with Python loops."""
    proj = project(means, quats, scales, opac, viewmat, K, W, H)
    order = torch.argsort(proj.depths.detach(), stable=True).tolist()
    img = torch.zeros(H, W, colors.shape[1])
    alpha_img = torch.zeros(H, W)
    for y in range(H):
        for x in range(W):
            T = torch.tensor(1.0)
            acc = torch.zeros(colors.shape[1])
            for i in order:
                r = proj.radii[i]
                m = proj.means2d[i]
                md = m.detach()
                if (r == 0).any():
                    continue
                if abs(x + 0.5 - float(md[0])) > float(r[0]) or abs(y + 0.5 - float(md[1])) > float(r[1]):
                    continue  # outside the Gaussian's pixel box (there alpha < 1/255 anyway)
                dx, dy = x + 0.5 - m[0], y + 0.5 - m[1]
                a, b, c = proj.conics[i]
                power = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = torch.clamp(opac[i] * torch.exp(-power), max=ALPHA_MAX)
                if power < 0 or alpha < ALPHA_MIN:
                    continue
                nxt = T * (1 - alpha)
                if nxt <= T_MIN:
                    break
                acc = acc + alpha * T * colors[i]
                T = nxt
            img[y, x] = acc + T * bg
            alpha_img[y, x] = 1 - T
    return img, alpha_img


def test_rotation_matrix_is_orthonormal():
    R = quat_to_rotmat(torch.randn(10, 4))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(10, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(10), atol=1e-5)


def test_matches_brute_force_values_and_gradients():
    means, quats, scales, opac, colors, viewmat, K = _scene()
    bg = torch.tensor([0.2, 0.4, 0.6, 0.0, 1.0])
    params = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, colors)]
    img, alpha, info = rasterize(*params, viewmat, K, W, H, background=bg)
    assert img.shape == (H, W, 5) and alpha.shape == (H, W, 1)
    assert info["means2d"].shape == (1, 30, 2) and info["radii"].shape == (1, 30, 2)
    weights = torch.randn(H, W, 5, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((img * weights).sum() + alpha.sum(), params)

    ref_params = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, colors)]
    ref_img, ref_alpha = _brute_force(*ref_params, viewmat, K, bg)
    assert torch.allclose(img, ref_img, atol=1e-5)
    assert torch.allclose(alpha[..., 0], ref_alpha, atol=1e-5)
    ref_grads = torch.autograd.grad((ref_img * weights).sum() + ref_alpha.sum(), ref_params)
    for name, g, r in zip(("means", "quats", "scales", "opacities", "colors"), grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-4, rtol=1e-3), name
    assert grads[0].abs().sum() > 0


def test_small_blocks_and_budgets_give_the_same_image():
    """Chunking (tile budget, blocks with carried transmittance) bounds memory, never changes pixels."""
    from laser_gs.backends.gsplat.raster import rasterize_torch

    means, quats, scales, opac, colors, viewmat, K = _scene(80, seed=2)
    proj = project(means, quats, scales, opac, viewmat, K, W, H)
    a, aa = rasterize_torch(proj, opac, colors, W, H)
    b, ba = rasterize_torch(proj, opac, colors, W, H, budget=256 * 3, block=3)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(aa, ba, atol=1e-6)


def test_culling_behind_camera_and_outside_image():
    means = torch.tensor([[0.0, 0.0, -2.0], [50.0, 0.0, 2.0], [0.0, 0.0, 2.0]])
    n = len(means)
    proj = project(means, torch.tensor([[1.0, 0, 0, 0]] * n), torch.full((n, 3), 0.1), torch.full((n,), 0.9),
                   torch.eye(4), torch.tensor([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]]), W, H)
    assert proj.radii[0].tolist() == [0, 0] and proj.radii[1].tolist() == [0, 0]
    assert (proj.radii[2] > 0).all()
