"""Volume rendering of a :class:`TensoRFField`: march, composite, and the per-point data semantics need."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from laser_gs.backends.tensorf.field import TensoRFField
from laser_gs.backends.tensorf.sampling import OccupancyGrid, ndc_rays, sample_contracted, sample_rays
from laser_gs.data.unbounded import Contraction


@dataclass
class RayGeometry:
    """How rays of a scene are parameterised (fixed for a trained model)."""

    aabb: Tensor  # [2, 3] box the volumes span (NDC box for forward-facing scenes, [-2, 2]^3 when contracted)
    ndc: bool
    ndc_scale: tuple[float, float]
    background: float  # value composited where rays end empty (1 white, 0 black)
    distance_scale: float
    weight_threshold: float
    contraction: Contraction | None = None  # unbounded 360-degree scenes


@dataclass
class MarchResult:
    """Per-ray composites plus the kept sample points (those with weight above the threshold)."""

    rgb: Tensor | None  # [R, 3]
    depth: Tensor  # [R] expected ray parameter
    acc: Tensor  # [R] opacity
    points: Tensor  # [P, 3] normalised coordinates
    ray_id: Tensor  # [P] ray of each point
    weight: Tensor  # [P] compositing weight
    app: Tensor | None  # [P, app_dim] appearance features (when computed)


def composite(values: Tensor, weight: Tensor, ray_id: Tensor, n_rays: int) -> Tensor:
    """``sum_i w_i v_i`` per ray: ``[P, K]`` point values -> ``[n_rays, K]``."""
    out = values.new_zeros(n_rays, values.shape[-1])
    return out.index_add_(0, ray_id, weight[:, None] * values)


def num_samples(geometry: RayGeometry, resolution: list[int], step_ratio: float, ndc_samples: int,
                max_samples: int) -> tuple[int, float | None]:
    """Samples per ray and step length (box scenes: ``step_ratio`` voxels per step, capped; contracted
    scenes: the world step in the kept ball, which spans half the grid, and half as many again for the shell)."""
    if geometry.ndc:
        return ndc_samples, None
    if geometry.contraction is not None:
        r = geometry.contraction.radius
        step = step_ratio * r * 4.0 / float(torch.tensor(resolution, dtype=torch.float32).mean())
        n_ball = math.ceil(2 * r / step) + 1
        return min(n_ball + (n_ball + 1) // 2, max_samples), step
    size = geometry.aabb[1] - geometry.aabb[0]
    voxel = float((size / torch.tensor(resolution, dtype=size.dtype)).mean())
    step = step_ratio * voxel
    n = int(torch.ceil(size.norm() / step))
    return min(n, max_samples), step


def march(field: TensoRFField, geometry: RayGeometry, occupancy: OccupancyGrid, origins: Tensor, dirs: Tensor,
          n_samples: int, step: float | None, generator: torch.Generator | None = None, want_rgb: bool = True,
          want_app: bool = False, density_grad: bool = True, app_grad: bool = True) -> MarchResult:
    """March ``R`` world rays ``[R, 3]`` through the field.

    Density is evaluated only at samples inside the box and the occupancy grid;
    appearance only where the compositing weight exceeds the threshold.
    """
    R = origins.shape[0]
    if geometry.ndc:
        o, d = ndc_rays(origins, dirs, *geometry.ndc_scale)
    else:
        o, d = origins, dirs
    if geometry.contraction is not None:
        s = sample_contracted(o, d, geometry.contraction, n_samples, step, generator)
    else:
        s = sample_rays(o, d, geometry.aabb, n_samples, geometry.ndc, step, generator)
    keep = s.inside.clone()
    keep[keep.clone()] = occupancy.query(s.xyz[s.inside])
    sigma = s.t.new_zeros(s.t.shape)
    with torch.set_grad_enabled(density_grad and torch.is_grad_enabled()):
        if keep.any():
            sigma = sigma.masked_scatter(keep, field.sigma(s.xyz[keep]))
        alpha = 1.0 - torch.exp(-sigma * s.deltas * geometry.distance_scale)
        trans = torch.cumprod(torch.cat([alpha.new_ones(R, 1), 1.0 - alpha + 1e-10], dim=-1), dim=-1)[:, :-1]
        weight = alpha * trans
    acc = weight.sum(dim=-1)
    depth = (weight * s.t).sum(dim=-1)
    sel = weight > geometry.weight_threshold
    ray_id = sel.nonzero()[:, 0]
    points = s.xyz[sel]
    w = weight[sel]
    app = rgb = None
    if want_rgb or want_app:
        with torch.set_grad_enabled(app_grad and torch.is_grad_enabled()):
            app = field.app_feature(points)
            if want_rgb:
                rgb_p = field.rgb(app, dirs[ray_id])
                rgb = composite(rgb_p, w, ray_id, R) + geometry.background * (1.0 - acc)[:, None]
    return MarchResult(rgb, depth, acc, points, ray_id, w, app)
