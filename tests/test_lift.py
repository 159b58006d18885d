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
