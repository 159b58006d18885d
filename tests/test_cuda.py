"""The CUDA path against the CPU one: gsplat's rasterizer against ours (values and gradients), gsplat's
densification on either device, both backends rendering the same model on CPU and CUDA. The CUDA ones are
skipped without CUDA; ``scripts/gpu_check.sh`` runs them on a GPU machine."""

from __future__ import annotations

import pytest
import torch

from conftest import fit
from laser_gs.backends.gsplat.raster import rasterize


W, H = 96, 64


def _gaussians(n: int, channels: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([(torch.rand(n, 2, generator=g) * 2 - 1) * 1.5, 2 + 3 * torch.rand(n, 1, generator=g)], 1)
    quats = torch.randn(n, 4, generator=g)
    scales = 0.02 + 0.1 * torch.rand(n, 3, generator=g)
    opac = 0.1 + 0.85 * torch.rand(n, generator=g)
    colors = torch.rand(n, channels, generator=g)
    K = torch.tensor([[70.0, 0, W / 2], [0, 70.0, H / 2], [0, 0, 1]])
    viewmat = torch.eye(4)
    viewmat[:3, 3] = torch.tensor([0.1, -0.05, 0.2])
    return means, quats, scales, opac, colors, viewmat, K


@pytest.mark.cuda
@pytest.mark.parametrize("channels", [3, 32])  # colours and N-D features
def test_cpu_rasterizer_matches_gsplat_values_and_gradients(channels):
    """Tolerance: 2e-3 absolute on images and alpha; gradients within 2 % of their largest magnitude."""
    tensors = _gaussians(400, channels, seed=channels)
    grads = {}
    for device in ("cpu", "cuda"):
        ins = [t.to(device).clone().requires_grad_(i < 5) for i, t in enumerate(tensors)]
        means, quats, scales, opac, colors, viewmat, K = ins
        depth = (means @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2:3]  # depth as an extra channel
        img, alpha, _ = rasterize(means, quats, scales, opac, torch.cat([colors, depth], 1), viewmat, K, W, H)
        weights = torch.linspace(0.5, 1.5, img.shape[-1], device=device)
        ((img * weights).sum() + alpha.sum()).backward()
        grads[device] = ([img.detach().cpu(), alpha.detach().cpu()], [t.grad.cpu() for t in ins[:5]])
    (img_c, alpha_c), g_c = grads["cpu"]
    (img_g, alpha_g), g_g = grads["cuda"]
    assert torch.allclose(img_c, img_g, atol=2e-3) and torch.allclose(alpha_c, alpha_g, atol=2e-3)
    for name, a, b in zip(("means", "quats", "scales", "opacities", "colors"), g_c, g_g):
        scale = a.abs().max().clamp_min(1e-6)
        assert ((a - b).abs().max() / scale) < 0.02, name


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_gsplat_densification_runs(generated, tmp_path, device):
    """gsplat's strategy grows the Gaussians on either device. The schedule is given in the run's own steps
    (``gsplat.iters=60``): overrides are in the preset's steps and ``--iters`` rescales them, so refining at
    steps 5-50 of an 800-step preset squeezed into 60 never refined (the first GPU check caught it)."""
    scene, backend = fit("gsplat", generated[0], tmp_path / "run", 60, features=False, preset="fast",
                         overrides=["gsplat.iters=60", "gsplat.coarse_until=20", "gsplat.refine_start=5",
                                    "gsplat.refine_every=10", "gsplat.refine_stop=50", "gsplat.init_points=3000",
                                    "gsplat.max_gaussians=8000"],
                         device=device)
    assert backend.params["means"].device.type == device
    assert backend.params["means"].shape[0] > 3000 * 1.5  # densified (pruning alone would shrink it)
    assert all(torch.isfinite(v).all() for v in backend.params.values())


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["tensorf", "gsplat"])
def test_backends_render_the_same_on_cuda_and_cpu(generated, tmp_path, name):
    from laser_gs.backends.registry import MODEL_FILE, get_backend

    scene, trained = fit(name, generated[0], tmp_path / "run", 16)
    cpu = get_backend(name).load(tmp_path / "run" / MODEL_FILE, device="cpu")
    gpu = get_backend(name).load(tmp_path / "run" / MODEL_FILE, device="cuda")
    outputs = ("rgb", "logits", "label", "segmentation")
    a = cpu.render(scene.cameras, 0, outputs, cpu.text)
    b = {k: v.cpu() for k, v in gpu.render(scene.cameras, 0, outputs, gpu.text).items()}
    assert torch.allclose(a["rgb"], b["rgb"], atol=2e-3)
    assert torch.allclose(a["logits"], b["logits"], atol=5e-3) and torch.allclose(a["label"], b["label"], atol=5e-3)
    assert (a["segmentation"] == b["segmentation"]).float().mean() > 0.99
