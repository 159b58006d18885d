"""Geometry-aware smoothing of per-point semantic features: a bilateral diffusion over a point cloud's
nearest-neighbour graph.

Why: the 2D teacher mixes an object with what surrounds it in the image (a CLIP token covers 16 x 16
pixels), and it does so in every view the same way when the object is thin or the colour of its background
(a grey pillar before a grey wall). Averaging views then keeps the mixture, and the object splits into a
part that reads "object" and a part that reads "background". The 3D points know what the teacher does not:
which points lie together on one surface. Each diffusion step moves a point's feature towards the mean of
its neighbours, weighted by distance (a Gaussian of ``space`` times the median nearest-neighbour distance)
and by colour (a Gaussian on chromaticity, so shading does not cut a surface but a change of material
does). A gap in depth (pillar and wall) or a colour edge (pillar and floor) keeps the evidence apart; a
surface that reads half "object" ends up reading one thing throughout, so the class calibration after it
can pick it (measured in docs/benchmarks.md, "Camouflaged objects").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nearest_neighbours(points: Tensor, k: int, chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest other points of every point, by brute force in row chunks of ``chunk x N`` distances
    (default: about 64M of them, 256 MB, whatever ``N``; 30k points take a few seconds on a CPU core, 500k
    points a few seconds on a GPU and minutes on a CPU).

    Args:
        points: ``[N, 3]``.
        k: neighbours per point (clamped to ``N - 1``).

    Returns:
        ``idx`` ``[N, k]`` int64 and ``dist`` ``[N, k]`` ascending distances.
    """
    assert points.ndim == 2 and points.shape[1] == 3, tuple(points.shape)
    n = points.shape[0]
    k = min(k, n - 1)
    chunk = chunk or max(1, (1 << 26) // max(n, 1))
    idx, dist = [], []
    for s in range(0, n, chunk):
        d = torch.cdist(points[s:s + chunk], points)
        d[torch.arange(d.shape[0], device=d.device), torch.arange(s, s + d.shape[0], device=d.device)] = float("inf")
        dd, ii = d.topk(k, dim=1, largest=False)
        idx.append(ii)
        dist.append(dd)
    return torch.cat(idx), torch.cat(dist)


def chromaticity(rgb: Tensor) -> Tensor:
    """``[N, 3]`` colours -> ``[N, 3]`` chromaticity ``rgb / (r + g + b)`` (shading-invariant)."""
    rgb = rgb.clamp_min(1e-3)
    return rgb / rgb.sum(dim=-1, keepdim=True)


def bilateral_weights(points: Tensor, colours: Tensor, strength: Tensor, k: int, space: float, colour: float
                      ) -> tuple[Tensor, Tensor]:
    """The smoothing graph: ``idx`` ``[N, k]`` neighbours and ``w`` ``[N, k]`` their weights.

    Args:
        points: ``[N, 3]`` positions.
        colours: ``[N, 3]`` RGB in [0, 1].
        strength: ``[N]`` how much a point may speak for its neighbours (opacity: faint floaters little).
        k: neighbours per point.
        space: spatial sigma in median nearest-neighbour distances.
        colour: chromaticity sigma.
    """
    assert colours.shape == points.shape and strength.shape == points.shape[:1]
    idx, dist = nearest_neighbours(points, k)
    sigma = space * dist[:, 0].median().clamp_min(1e-12)
    chroma = chromaticity(colours)
    dc = (chroma[:, None, :] - chroma[idx]).norm(dim=-1)
    w = torch.exp(-0.5 * (dist / sigma) ** 2 - 0.5 * (dc / colour) ** 2) * strength[idx]
    return idx, w


def smooth_features(features: Tensor, idx: Tensor, w: Tensor, iters: int, mix: float = 0.5) -> Tensor:
    """``iters`` diffusion steps ``f <- unit((1 - mix) f + mix * weighted mean of the neighbours' f)``.

    Args:
        features: ``[N, E]`` per-point features (their direction is what is compared with the text).
        idx: ``[N, k]`` neighbours, ``w``: ``[N, k]`` their weights (:func:`bilateral_weights`).

    Returns:
        ``[N, E]`` unit-length features (a point with no weighted neighbour keeps its own direction).
    """
    assert idx.shape == w.shape and idx.shape[0] == features.shape[0], (tuple(idx.shape), tuple(features.shape))
    f = F.normalize(features, dim=-1)
    norm = w.sum(dim=1, keepdim=True)
    has = norm > 1e-12
    for _ in range(iters):
        mean = torch.einsum("nk,nke->ne", w, f[idx]) / norm.clamp_min(1e-12)
        f = F.normalize(torch.where(has, (1 - mix) * f + mix * mean, f), dim=-1)
    return f
