"""Bilateral feature smoothing over a point cloud: neighbours against brute force, and the geometric claims
(a depth gap or a colour edge keeps evidence apart; one surface ends up reading one thing)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from laser_gs.semantics.point_smoothing import (bilateral_weights, chromaticity, nearest_neighbours,
                                                 smooth_features)


def test_nearest_neighbours_match_brute_force_across_chunks():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(300, 3, generator=g)
    idx, dist = nearest_neighbours(pts, 5, chunk=64)
    full = torch.cdist(pts, pts) + torch.diag(torch.full((300,), float("inf")))
    ref_d, _ = full.topk(5, dim=1, largest=False)
    assert idx.shape == (300, 5)
    torch.testing.assert_close(dist, ref_d)
    torch.testing.assert_close((pts[:, None] - pts[idx]).norm(dim=-1), ref_d)
    assert not (idx == torch.arange(300)[:, None]).any()  # never its own neighbour


def _pillar_before_wall(gap: float, pillar_rgb=(0.5, 0.5, 0.5), wall_rgb=(0.5, 0.5, 0.5)):
    """A dense pillar (a column of points) in front of a wall (a plane of points), ``gap`` apart in depth."""
    g = torch.Generator().manual_seed(1)
    ys = torch.linspace(0, 2, 60)
    ang = torch.linspace(0, torch.pi, 12)
    pillar = torch.stack(torch.meshgrid(ys, ang, indexing="ij"), -1).reshape(-1, 2)
    pillar = torch.stack([0.2 * torch.cos(pillar[:, 1]), pillar[:, 0], -0.2 * torch.sin(pillar[:, 1])], -1)
    wx, wy = torch.meshgrid(torch.linspace(-1.5, 1.5, 90), torch.linspace(0, 2, 60), indexing="ij")
    wall = torch.stack([wx.reshape(-1), wy.reshape(-1), torch.full((wx.numel(),), gap)], -1)
    points = torch.cat([pillar, wall]) + 0.002 * torch.randn(len(pillar) + len(wall), 3, generator=g)
    colours = torch.cat([torch.tensor(pillar_rgb).expand(len(pillar), 3), torch.tensor(wall_rgb).expand(len(wall), 3)])
    # shading: brightness varies, chromaticity does not
    colours = colours * (0.6 + 0.4 * torch.rand(len(points), 1, generator=g))
    return points, colours, len(pillar)


def _features(points: torch.Tensor, n_pillar: int) -> torch.Tensor:
    """Pillar: each point reads a random mixture of "wall" (e0) and "pillar" (e1), some more one, some more the
    other (a teacher that mixes the pillar with the wall around it); the wall reads "wall"."""
    e = torch.eye(4)
    f = e[0].expand(len(points), 4).clone()
    share = 0.2 + 0.6 * torch.rand(n_pillar, 1, generator=torch.Generator().manual_seed(3))
    f[:n_pillar] = (1 - share) * e[0] + share * e[1]
    return f


def test_a_depth_gap_keeps_the_wall_and_the_pillar_reads_one_thing():
    points, colours, n = _pillar_before_wall(gap=1.0)
    f = _features(points, n)
    idx, w = bilateral_weights(points, colours, torch.ones(len(points)), k=16, space=2.0, colour=0.02)
    out = smooth_features(f, idx, w, iters=60)
    pillar, wall = out[:n], out[n:]
    # before: some pillar points read "wall" more than "pillar", others the reverse
    before = F.normalize(f[:n], dim=-1)
    assert 0.2 < ((before[:, 1] - before[:, 0]) > 0).float().mean() < 0.8
    # after: the pillar's points agree with each other (one surface, one reading) ...
    spread_before = (before[:, 1] - before[:, 0]).std()
    spread_after = (pillar[:, 1] - pillar[:, 0]).std()
    assert spread_after < 0.25 * spread_before
    # ... and nothing of the pillar leaked into the wall across the gap
    assert (wall[:, 0] > 0.999).all()


def test_without_a_gap_or_colour_edge_the_evidence_mixes():
    """Control: the same pillar touching the wall mixes with it (what the gap test above rules out)."""
    points, colours, n = _pillar_before_wall(gap=0.0)
    f = _features(points, n)
    idx, w = bilateral_weights(points, colours, torch.ones(len(points)), k=16, space=2.0, colour=0.02)
    out = smooth_features(f, idx, w, iters=60)
    assert (out[n:, 0] < 0.999).any()


def test_a_colour_edge_stops_the_smoothing_but_shading_does_not():
    points, colours, n = _pillar_before_wall(gap=0.0, pillar_rgb=(0.7, 0.4, 0.2))  # touching, another colour
    f = _features(points, n)
    idx, w = bilateral_weights(points, colours, torch.ones(len(points)), k=16, space=2.0, colour=0.02)
    out = smooth_features(f, idx, w, iters=60)
    assert (out[n:, 0] > 0.999).all()
    torch.testing.assert_close(chromaticity(torch.tensor([[0.2, 0.4, 0.6]])),
                               chromaticity(torch.tensor([[0.1, 0.2, 0.3]])))


def test_zero_steps_and_constant_features_are_unchanged():
    points, colours, n = _pillar_before_wall(gap=1.0)
    idx, w = bilateral_weights(points, colours, torch.ones(len(points)), k=8, space=2.0, colour=0.02)
    f = torch.randn(len(points), 6, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(smooth_features(f, idx, w, iters=0), F.normalize(f, dim=-1))
    const = torch.ones(len(points), 6)
    torch.testing.assert_close(smooth_features(const, idx, w, iters=10), F.normalize(const, dim=-1))


def test_faint_points_do_not_speak_for_their_neighbours():
    points, colours, n = _pillar_before_wall(gap=1.0)
    strength = torch.ones(len(points))
    strength[:n] = 0.0  # the whole pillar is transparent: it cannot pull anything
    f = _features(points, n)
    idx, w = bilateral_weights(points, colours, strength, k=16, space=2.0, colour=0.02)
    out = smooth_features(f, idx, w, iters=30)
    assert (out[n:, 0] > 0.999).all()
    torch.testing.assert_close(out[:n], F.normalize(f[:n], dim=-1))  # no neighbour with weight: unchanged
