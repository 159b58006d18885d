"""3D Gaussians with colour (spherical harmonics): initialisation and parameters.

Parameters live in a ``ParameterDict`` with gsplat's names (``means``, ``scales``
(log), ``quats``, ``opacities`` (logit), ``sh0``, ``shN``), so gsplat's
densification strategies clone, split and prune them together. Their semantics
come from a field evaluated at the centres (``semantic_field.py``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from laser_gs.data.scene import Scene
from laser_gs.data.unbounded import Contraction
from laser_gs.spherical_harmonics import SH_C0

if TYPE_CHECKING:
    from rich.console import Console

    from laser_gs.backends.gsplat.config import GsplatSettings


def knn_distance(points: Tensor, k: int = 3, chunk: int = 2048) -> Tensor:
    """Mean distance of each point to its ``k`` nearest neighbours, ``[N]`` (chunked, O(N^2) time)."""
    out = []
    for start in range(0, points.shape[0], chunk):
        d = torch.cdist(points[start:start + chunk], points)
        out.append(d.topk(k + 1, largest=False).values[:, 1:].mean(dim=-1))
    return torch.cat(out)


def initial_points(scene: Scene, n: int, generator: torch.Generator,
                   sparse: tuple[Tensor, Tensor] | None = None, content_share: float = 0.0
                   ) -> tuple[Tensor, Tensor]:
    """Points ``[n, 3]`` and colours ``[n, 3]`` to start from.

    Sparse points ``sparse = ([P, 3], [P, 3] colours)`` when given (the scene's structure-from-motion points,
    or points triangulated from its views; up to ``n``, a random subset beyond), the rest drawn as below so
    areas without points (sky, plain walls) are covered too.
    Forward-facing scenes: random training pixels lifted to a depth drawn uniformly in inverse depth
    between the view's near and far bounds (the camera frusta), coloured by the pixel. Other scenes:
    uniform in the scene box, grey; with sparse points, ``content_share`` of them uniform in the box around
    the points instead (:func:`content_box`), so an open floor or sky does not take most of them.
    """
    if sparse is not None and len(sparse[0]):
        pts, cols = sparse
        if len(pts) > n:
            pick = torch.randperm(len(pts), generator=generator)[:n]
            pts, cols = pts[pick], cols[pick]
        rest = n - len(pts)
        if rest <= 0:
            return pts.clone(), cols.clone()
        near = 0 if scene.forward_facing else int(round(content_share * rest))
        more, more_cols = _random_points(scene, rest - near, generator)
        box = content_box(pts, scene.aabb)
        inner = box[0] + (box[1] - box[0]) * torch.rand(near, 3, generator=generator)
        return torch.cat([pts, inner, more]), torch.cat([cols, torch.full((near, 3), 0.5), more_cols])
    return _random_points(scene, n, generator)


def content_box(points: Tensor, aabb: Tensor, quantile: float = 0.02, margin: float = 0.25) -> Tensor:
    """``[2, 3]`` box around sparse points ``[P, 3]``: their per-axis 2-98 % quantiles widened by ``margin``
    of the size on each side, inside the scene box ``aabb``."""
    q = torch.tensor([quantile, 1.0 - quantile])
    lo, hi = torch.quantile(points.float(), q, dim=0)
    pad = margin * (hi - lo)
    return torch.stack([torch.maximum(lo - pad, aabb[0]), torch.minimum(hi + pad, aabb[1])])


def _random_points(scene: Scene, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` points in the camera frusta (forward-facing) or the scene box (see :func:`initial_points`)."""
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


def background_sphere(scene: Scene, contraction: Contraction, n: int, radius_scale: float
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` Gaussians on a sphere around an unbounded scene's rig, for its sky and far floor.

    The sphere has ``radius_scale`` times the kept ball's radius (:mod:`laser_gs.data.unbounded`), far enough
    that what lies beyond it moves little between the views. Points are spread evenly (a Fibonacci lattice)
    over the part of the sphere some training view sees, each coloured by the first such view's pixel.

    Returns:
        ``points`` ``[m, 3]``, ``colours`` ``[m, 3]`` and ``scales`` ``[m]`` (the lattice spacing, so the splats
        tile the sphere), ``m <= n``.
    """
    if n <= 0:
        return torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0)
    center, R = torch.tensor(contraction.center), contraction.radius * radius_scale
    views = torch.as_tensor(scene.train_views)
    cams = scene.cameras
    for m in (2 * n, 4 * n, 8 * n, 16 * n):  # enough candidates that about n land in view
        k = torch.arange(m, dtype=torch.float64) + 0.5
        z = 1 - 2 * k / m
        phi = k * math.pi * (3 - math.sqrt(5))
        rxy = (1 - z * z).sqrt()
        dirs = torch.stack([rxy * torch.cos(phi), z, rxy * torch.sin(phi)], -1).float()
        pts = center + R * dirs
        uv, depth = cams.project(pts)  # [N, m, 2], [N, m]
        uv, depth = uv[views], depth[views]
        seen = (depth > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < scene.width) & (uv[..., 1] >= 0) & (
            uv[..., 1] < scene.height)
        visible = seen.any(0)
        if int(visible.sum()) >= n or m == 16 * n:
            break
    idx = visible.nonzero()[:, 0]
    if len(idx) > n:  # thin evenly along the lattice
        idx = idx[torch.linspace(0, len(idx) - 1, n).round().long()]
    first = seen[:, idx].float().argmax(0)  # the first view that sees each point
    px = uv[first, idx].long()
    colours = scene.images[views[first], px[:, 1].clamp(0, scene.height - 1), px[:, 0].clamp(0, scene.width - 1)]
    spacing = R * math.sqrt(4 * math.pi / m) * math.sqrt(int(visible.sum()) / max(1, len(idx)))
    return pts[idx], colours.float(), torch.full((len(idx),), spacing)


def pixel_footprint(points: Tensor, scene: Scene, pixels: float = 1.5) -> Tensor:
    """``[N]`` world size of ``pixels`` pixels at each point's distance from the nearest camera."""
    d = torch.cdist(points, scene.cameras.centers).min(dim=1).values
    return pixels * d / float(scene.cameras.K[:, 0, 0].mean())


def create_params(points: Tensor, colors: Tensor, sh_degree: int, max_scale: Tensor | None = None
                  ) -> nn.ParameterDict:
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
    })


def empty_params(n: int, sh_degree: int) -> nn.ParameterDict:
    """Parameters of the right shapes for ``n`` Gaussians (to load a checkpoint into)."""
    z = torch.zeros
    return nn.ParameterDict({
        "means": nn.Parameter(z(n, 3)), "scales": nn.Parameter(z(n, 3)), "quats": nn.Parameter(z(n, 4)),
        "opacities": nn.Parameter(z(n)), "sh0": nn.Parameter(z(n, 1, 3)),
        "shN": nn.Parameter(z(n, (sh_degree + 1) ** 2 - 1, 3)),
    })


def seed_points(scene: Scene, init_from: str, console: Console, min_points: int) -> tuple[Tensor, Tensor] | None:
    """``(xyz, rgb)`` to seed the Gaussians with (``GsplatSettings.init_from``), or None to start at random: the
    scene's SfM points, else points triangulated from the training views (360-degree scenes, or when asked);
    fewer than ``min_points`` of either do not count."""
    from laser_gs.data.triangulate import triangulate

    if init_from == "random":
        return None
    if scene.points is not None and len(scene.points) >= min_points:
        return scene.points, scene.point_colors
    if init_from == "auto" and scene.forward_facing:
        return None  # the frustum start is as good there (see GsplatSettings.init_from)
    tri = triangulate(scene, console=console)
    if tri.info["points"] < min_points:
        console.print(f"[yellow]Warning:[/] only {tri.info['points']} points could be triangulated from the "
                      f"training views (at least {min_points} are needed); the Gaussians start at random (too "
                      "little texture or overlap?)")
        return None
    console.print(f"Seeding Gaussians with {tri.info['points']:,} triangulated points "
                  f"({tri.info['mean_reprojection_error_px']:.2f} px; cached in {tri.info['cache']})")
    return tri.xyz, tri.rgb


def initial_gaussians(scene: Scene, cfg: GsplatSettings, generator: torch.Generator,
                      seeds: tuple[Tensor, Tensor] | None, contraction: Contraction | None, console: Console
                      ) -> tuple[nn.ParameterDict, float]:
    """The Gaussians a run starts from: ``init_points`` of them from ``seeds`` and random draws, plus (unbounded
    scenes, ``contraction`` given) a share on a background sphere. Returns the parameters (CPU) and the largest
    background scale (0 without a sphere; densification's pruning limit must stay above it)."""
    n_bg = round(cfg.background_share * cfg.init_points) if contraction is not None else 0
    bg_points, bg_colours, bg_scales = (background_sphere(scene, contraction, n_bg, cfg.background_radius)
                                        if n_bg else (torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0)))
    points, colours = initial_points(scene, cfg.init_points - len(bg_points), generator, seeds,
                                     cfg.init_content_share)
    max_scale = torch.cat([pixel_footprint(points, scene, cfg.init_max_pixels), bg_scales])
    if len(bg_points):
        console.log(f"unbounded 360° scene: {len(bg_points):,} Gaussians on a background sphere of radius "
                    f"{contraction.radius * cfg.background_radius:.1f}; the semantic field reads contracted positions")
    params = create_params(torch.cat([points, bg_points]), torch.cat([colours, bg_colours]), cfg.sh_degree,
                           max_scale=max_scale)
    return params, float(bg_scales.max()) if len(bg_points) else 0.0


@torch.no_grad()
def cap_gaussians(params: nn.ParameterDict, optimizers: dict, strategy_state: dict, cap: int) -> None:
    """Prune the least opaque Gaussians beyond ``cap`` (0: no cap), with their optimizer and strategy state
    (gsplat's ``remove``): bounds CPU time and memory."""
    from gsplat.strategy.ops import remove

    n = params["means"].shape[0]
    if cap and n > cap:
        order = torch.argsort(params["opacities"])
        mask = torch.zeros(n, dtype=torch.bool, device=order.device)
        mask[order[: n - cap]] = True
        remove(params, optimizers, strategy_state, mask)
