"""Lifting per-pixel targets onto Gaussians equals the blending-weight average computed explicitly."""

from __future__ import annotations

import pytest
import torch

from laser_gs.backends.gsplat.lift import lift_to_gaussians
from laser_gs.backends.gsplat.raster import rasterize

W, H = 32, 24


def _gaussians(n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=g) * 1.6 - 0.8, 2 + 2 * torch.rand(n, 1, generator=g)], 1)
    means[-1] = torch.tensor([0.0, 0.0, -5.0])  # behind the cameras: seen by no view
    quats = torch.randn(n, 4, generator=g)
    scales = 0.05 + 0.2 * torch.rand(n, 3, generator=g)
    opac = 0.3 + 0.69 * torch.rand(n, generator=g)
    return means, quats, scales, opac


def _cameras():
    K = torch.tensor([[28.0, 0, W / 2], [0, 28.0, H / 2], [0, 0, 1]])
    second = torch.eye(4)
    second[0, 3] = 0.3  # shifted sideways
    return [(torch.eye(4), K), (second, K)]


def test_lift_equals_explicit_weighted_mean():
    means, quats, scales, opac = _gaussians()
    n = means.shape[0]
    g = torch.Generator().manual_seed(1)
    views = [(vm, K, W, H, torch.randn(H * W, 3, generator=g)) for vm, K in _cameras()]

    def render(colours, viewmat, K, w, h):
        return rasterize(means, quats, scales, opac, colours, viewmat, K, w, h)[0]

    mean, weight = lift_to_gaussians(render, n, views)
    # explicit: one-hot colours give every Gaussian's weight at every pixel, w[p, g]
    total, wsum = torch.zeros(n, 3), torch.zeros(n)
    for viewmat, K, w, h, t in views:
        with torch.no_grad():
            weights = render(torch.eye(n), viewmat, K, w, h).reshape(-1, n)  # [H*W, N]
        total += weights.T @ t
        wsum += weights.sum(0)
    assert weight[-1] == 0 and torch.equal(mean[-1], torch.zeros(3))
    assert (weight[:-1] > 0).all()
    assert torch.allclose(weight, wsum, atol=1e-5)
    seen = wsum > 0
    assert torch.allclose(mean[seen], total[seen] / wsum[seen, None], atol=1e-5)


def test_lift_without_views_is_an_error():
    with pytest.raises(ValueError, match="no views"):
        lift_to_gaussians(lambda *a: None, 3, [])


def test_lifting_in_a_basis_equals_projecting_the_full_lift():
    """The lift is linear, so lifting k basis coefficients and mapping back (``gsplat.lift_dims``) is the full
    lift projected on the basis: exact, and cheaper by D / k."""
    means, quats, scales, opac = _gaussians(seed=3)
    n = means.shape[0]
    g = torch.Generator().manual_seed(2)
    full = [(vm, K, W, H, torch.randn(H * W, 16, generator=g)) for vm, K in _cameras()]
    basis = torch.linalg.qr(torch.randn(16, 4, generator=g)).Q  # [D, k] orthonormal

    def render(colours, viewmat, K, w, h):
        return rasterize(means, quats, scales, opac, colours, viewmat, K, w, h)[0]

    lifted, _ = lift_to_gaussians(render, n, full)
    reduced, _ = lift_to_gaussians(render, n, [(vm, K, w, h, t @ basis) for vm, K, w, h, t in full])
    assert torch.allclose(reduced @ basis.T, lifted @ basis @ basis.T, atol=1e-5)


def test_lift_method_renders_the_lifted_features(generated, tmp_path):
    """`semantic.method=lift`: no stage 2 steps, a feature head from the lifted features, no label volume."""
    import json

    from conftest import fit
    from laser_gs.errors import LaserError

    scene, model = fit("gsplat", generated[0], tmp_path / "run", 40,
                       overrides=["semantic.method=lift", "gsplat.init_points=3000"])
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert set(log["stage_seconds"]) == {"reconstruct", "lift", "calibration"} and model.heads_available == ("feature",)
    out = model.render(scene.cameras, 0, ("logits", "segmentation"), model.text)
    assert torch.isfinite(out["logits"]).all() and out["segmentation"].shape == (scene.height, scene.width)
    with pytest.raises(LaserError, match="no label volume"):
        model.render(scene.cameras, 0, ("label",), model.text)
