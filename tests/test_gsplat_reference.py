"""Our CPU path against gsplat's own pure-PyTorch reference functions (``gsplat.cuda._torch_impl``), so the
conventions of the CUDA path (projection, conics, culling, spherical harmonics) are checked without a GPU."""

from __future__ import annotations

import pytest
import torch

ref = pytest.importorskip("gsplat.cuda._torch_impl")

W, H = 120, 90


def _gaussians(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([(torch.rand(n, 2, generator=g) * 2 - 1) * 3.0, -1 + 7 * torch.rand(n, 1, generator=g)], 1)
    quats = torch.randn(n, 4, generator=g)
    scales = 0.01 + 0.2 * torch.rand(n, 3, generator=g)
    opacities = torch.rand(n, generator=g)
    K = torch.tensor([[90.0, 0, 61.0], [0, 85.0, 44.0], [0, 0, 1]])
    angle = torch.tensor(0.2)
    viewmat = torch.eye(4)
    viewmat[:3, :3] = torch.tensor([[torch.cos(angle), 0, torch.sin(angle)], [0, 1, 0],
                                    [-torch.sin(angle), 0, torch.cos(angle)]])
    viewmat[:3, 3] = torch.tensor([0.2, -0.1, 0.5])
    return means, quats, scales, opacities, viewmat, K


def test_projection_matches_gsplats_reference():
    from laser_gs.backends.gsplat.raster import project

    means, quats, scales, opacities, viewmat, K = _gaussians(2000)
    ours = project(means, quats, scales, opacities, viewmat, K, W, H)
    covars, _ = ref._quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = ref._fully_fused_projection(means, covars, viewmat[None], K[None], W, H)
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    both = (ours.radii > 0).all(-1) & (radii > 0).all(-1)
    assert both.sum() > 500
    assert torch.allclose(ours.means2d[both], means2d[both], rtol=1e-5, atol=1e-3)
    assert torch.allclose(ours.depths, depths, rtol=1e-6, atol=1e-6)
    assert torch.allclose(ours.conics[both], conics[both], rtol=1e-4, atol=1e-6)
    # culling: behind the near plane, off screen or degenerate in gsplat is culled here too; our extent is the
    # opacity-aware one (<= gsplat's 3.33 sigma), so ours is never larger and sometimes drops a faint Gaussian
    theirs_kept, ours_kept = (radii > 0).any(-1), (ours.radii > 0).any(-1)
    assert not (ours_kept & ~theirs_kept).any()
    assert (ours.radii <= radii).all()
    assert (theirs_kept & ~ours_kept).sum() < 0.2 * theirs_kept.sum()
    assert ((depths < 0.01) & ours_kept).sum() == 0 and ((depths < 0.01).sum() > 50)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_colours_match_gsplats_reference(degree):
    from laser_gs.spherical_harmonics import sh_to_rgb

    g = torch.Generator().manual_seed(degree)
    coeffs = 0.4 * torch.randn(300, 16, 3, generator=g)
    dirs = torch.nn.functional.normalize(torch.randn(300, 3, generator=g), dim=-1)
    ours = sh_to_rgb(coeffs[:, :1], coeffs[:, 1:], dirs, degree)
    theirs = (ref._spherical_harmonics(degree, dirs, coeffs) + 0.5).clamp_min(0.0)  # as gsplat.rasterization
    assert torch.allclose(ours, theirs, atol=1e-5)
