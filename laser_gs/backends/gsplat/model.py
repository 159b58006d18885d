"""3D Gaussians with colour (spherical harmonics), a semantic feature and a label code.

Parameters live in a ``ParameterDict`` with gsplat's names (``means``, ``scales``
(log), ``quats``, ``opacities`` (logit), ``sh0``, ``shN``) plus ``feat``
(per-Gaussian input of the transient query attention) and ``label`` (label
code), so gsplat's densification strategies clone, split and prune all of them
together.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from laser_gs.data.scene import Scene

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Real SH basis ``[N, (degree+1)^2]`` of unit directions ``[N, 3]`` (the 3DGS / gsplat convention)."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * x * z,
                SH_C2[4] * (xx - yy)]
    if degree >= 3:
        out += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4 * zz - xx - yy),
                SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, dim=-1)


def sh_to_rgb(sh0: Tensor, shN: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """``[N, 3]`` colours from SH coefficients (``sh0`` ``[N, 1, 3]``, ``shN`` ``[N, K-1, 3]``) seen along ``dirs``."""
    coeffs = torch.cat([sh0, shN], dim=1)[:, : (degree + 1) ** 2]
    basis = sh_basis(dirs, degree)  # [N, k]
    return (torch.einsum("nk,nkc->nc", basis, coeffs) + 0.5).clamp_min(0.0)


def knn_distance(points: Tensor, k: int = 3, chunk: int = 2048) -> Tensor:
    """Mean distance of each point to its ``k`` nearest neighbours, ``[N]`` (chunked, O(N^2) time)."""
    out = []
    for start in range(0, points.shape[0], chunk):
        d = torch.cdist(points[start:start + chunk], points)
        out.append(d.topk(k + 1, largest=False).values[:, 1:].mean(dim=-1))
    return torch.cat(out)


def initial_points(scene: Scene, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points ``[n, 3]`` and colours ``[n, 3]`` to start from (no sparse SfM points in our formats).

    Forward-facing scenes: random training pixels lifted to a depth drawn uniformly in
    inverse depth between the view's near and far bounds (the camera frusta), coloured
    by the pixel. Other scenes: uniform in the scene box, grey.
    """
    views = torch.as_tensor(scene.splits.get("train") or list(range(scene.num_views)))
    if scene.forward_facing:
        v = views[torch.randint(len(views), (n,), generator=generator)]
        x = torch.randint(scene.width, (n,), generator=generator)
        y = torch.randint(scene.height, (n,), generator=generator)
        origins, dirs = scene.cameras.rays_at(v, x.float() + 0.5, y.float() + 0.5)
        near, far = scene.near_far[v, 0], scene.near_far[v, 1]
        s = torch.rand(n, generator=generator)
        depth = 1.0 / (1.0 / near * (1 - s) + 1.0 / far * s)
        forward = scene.cameras.c2w[v, :3, 2]
        t = depth / (dirs * forward).sum(-1)
        return origins + t[:, None] * dirs, scene.images[v, y, x]
    lo, hi = scene.aabb[0], scene.aabb[1]
    pts = lo + (hi - lo) * torch.rand(n, 3, generator=generator)
    return pts, torch.full((n, 3), 0.5)


def pixel_footprint(points: Tensor, scene: Scene, pixels: float = 1.5) -> Tensor:
    """``[N]`` world size of ``pixels`` pixels at each point's distance from the nearest camera."""
    d = torch.cdist(points, scene.cameras.centers).min(dim=1).values
    return pixels * d / float(scene.cameras.K[:, 0, 0].mean())


def create_params(points: Tensor, colors: Tensor, sh_degree: int, point_dim: int, code_dim: int,
                  generator: torch.Generator, max_scale: Tensor | None = None) -> nn.ParameterDict:
    """gsplat-style parameters for Gaussians at ``points`` with RGB ``colors``.

    The initial scale is the mean distance to the 3 nearest neighbours (3DGS),
    capped by ``max_scale`` ``[N]``: sparse random starts otherwise make huge
    screen-space splats, which cost the CPU rasterizer quadratically in radius.
    """
    n = points.shape[0]
    dist = knn_distance(points).clamp_min(1e-7)
    if max_scale is not None:
        dist = torch.minimum(dist, max_scale)
    return nn.ParameterDict({
        "means": nn.Parameter(points.clone()),
        "scales": nn.Parameter(torch.log(dist)[:, None].repeat(1, 3)),
        "quats": nn.Parameter(torch.tensor([1.0, 0, 0, 0]).repeat(n, 1)),
        "opacities": nn.Parameter(torch.full((n,), math.log(0.1 / 0.9))),
        "sh0": nn.Parameter(((colors - 0.5) / SH_C0)[:, None, :]),
        "shN": nn.Parameter(torch.zeros(n, (sh_degree + 1) ** 2 - 1, 3)),
        "feat": nn.Parameter(0.1 * torch.randn(n, point_dim, generator=generator)),
        "label": nn.Parameter(0.1 * torch.randn(n, code_dim, generator=generator)),
    })


def empty_params(n: int, sh_degree: int, point_dim: int, code_dim: int) -> nn.ParameterDict:
    """Parameters of the right shapes for ``n`` Gaussians (to load a checkpoint into)."""
    z = torch.zeros
    return nn.ParameterDict({
        "means": nn.Parameter(z(n, 3)), "scales": nn.Parameter(z(n, 3)), "quats": nn.Parameter(z(n, 4)),
        "opacities": nn.Parameter(z(n)), "sh0": nn.Parameter(z(n, 1, 3)),
        "shN": nn.Parameter(z(n, (sh_degree + 1) ** 2 - 1, 3)), "feat": nn.Parameter(z(n, point_dim)),
        "label": nn.Parameter(z(n, code_dim)),
    })
