"""Lift per-pixel 2D targets onto Gaussians: the blending-weight average over the training views.

A rendered pixel is ``c_p = sum_g w_gp c_g`` (``w_gp`` the compositing weight of
Gaussian ``g`` at pixel ``p``), so the gradient of ``sum_p <c_p, t_p>`` with
respect to ``c_g`` is ``sum_p w_gp t_p``: one forward and backward pass of the
rasterizer with zero colours gives every Gaussian's weighted sum of the targets
of the pixels it covers, and a constant channel gives ``sum_p w_gp``. Summed
over the views and divided, that is each Gaussian's target averaged over every
view that sees it, occlusion included, with no optimisation.

Stage 2 of the gsplat backend trains on these per-Gaussian targets (see
``semantic_supervision`` in the config and docs/method.md): each step then draws
evidence from all training views, as a tensorf ray batch does, instead of from
the few views a rasterizer can render per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from rich.console import Console

    from laser_gs.data.cameras import Cameras
    from laser_gs.training.semantic import FeatureTargets

# (viewmat [4, 4], K [3, 3], width, height, targets [H*W, K] at that camera's pixel centres)
ViewTargets = tuple[Tensor, Tensor, int, int, Tensor]
Rasterizer = Callable[[Tensor, Tensor, Tensor, int, int], Tensor]  # (colours [N, K], viewmat, K, W, H) -> [H, W, K]


def lift_to_gaussians(rasterize_colours: Rasterizer, num_gaussians: int, views: Iterable[ViewTargets],
                      on_view: Callable[[], None] | None = None) -> tuple[Tensor, Tensor]:
    """Per-Gaussian weighted means of per-pixel targets.

    Args:
        rasterize_colours: renders ``[N, K]`` per-Gaussian colours for a camera (differentiable).
        num_gaussians: ``N``.
        views: per view ``(viewmat, K, W, H, targets [H*W, K])``, row-major pixels.
        on_view: called after each view (progress).

    Returns:
        ``[N, K]`` weighted means (zero where no pixel saw the Gaussian) and ``[N]`` the total
        weight ``sum_p w_gp`` over all views (how much of the images a Gaussian makes up).
    """
    total: Tensor | None = None
    weight: Tensor | None = None
    for viewmat, K, W, H, targets in views:
        k = targets.shape[1]
        colours = torch.zeros(num_gaussians, k + 1, device=targets.device, requires_grad=True)
        with torch.enable_grad():
            img = rasterize_colours(colours, viewmat, K, W, H)
            grad_out = torch.cat([targets, targets.new_ones(H * W, 1)], dim=1).view(H, W, k + 1)
            (g,) = torch.autograd.grad(img, colours, grad_outputs=grad_out)
        total = g[:, :k] if total is None else total + g[:, :k]
        weight = g[:, k] if weight is None else weight + g[:, k]
        if on_view is not None:
            on_view()
    if total is None:
        raise ValueError("no views to lift from")
    mean = torch.where(weight[:, None] > 0, total / weight.clamp_min(1e-12)[:, None], torch.zeros_like(total))
    return mean, weight


@torch.no_grad()
def lift_clip_targets(params: nn.ParameterDict, cameras: Cameras, views: list[int], targets: FeatureTargets,
                      lift_scale: float, lift_dims: int, console: Console | None = None
                      ) -> tuple[Tensor, Tensor | None, Tensor]:
    """``[N, D]`` CLIP features, ``[N, C]`` text-augmentation targets (or None) and ``[N]`` visibility of every
    Gaussian, averaged over ``views`` rendered at ``lift_scale`` of their resolution.

    With ``0 < lift_dims < D`` the features are lifted as their coefficients on the ``lift_dims`` strongest
    directions (all views' tokens) and mapped back after: the lift is linear and its cost grows with channels.
    """
    from laser_gs.backends.gsplat.raster import rasterize
    from laser_gs.backends.gsplat.render import scaled_camera
    from laser_gs.progress import progress

    device = params["means"].device
    basis = targets.basis(lift_dims) if 0 < lift_dims < targets.dim else None  # [D, k]
    table = targets.grids.float() @ basis if basis is not None else None  # [V, h, w, k]
    means, quats = params["means"].detach(), params["quats"].detach()
    scales, opacities = torch.exp(params["scales"].detach()), torch.sigmoid(params["opacities"].detach())

    def render(colours: Tensor, viewmat: Tensor, K: Tensor, W: int, H: int) -> Tensor:
        return rasterize(means, quats, scales, opacities, colours, viewmat, K, W, H)[0]

    def per_view() -> Iterator[ViewTargets]:
        for v in views:
            viewmat, K, W, H = scaled_camera(cameras, v, lift_scale)
            ys, xs = torch.meshgrid(torch.arange(H, device=device), torch.arange(W, device=device), indexing="ij")
            u = (xs.reshape(-1).float() + 0.5) * cameras.width / W
            vv = (ys.reshape(-1).float() + 0.5) * cameras.height / H
            view = torch.full_like(u, v, dtype=torch.long)
            if table is not None:
                clip = targets.sample_table(table, view, u, vv)
                aug = targets.sample_table(targets.aug, view, u, vv) if targets.aug is not None else None
            else:
                clip, aug = targets.sample(view, u, vv)
            yield viewmat, K, W, H, clip if aug is None else torch.cat([clip, aug], dim=1)

    label = f"lifting CLIP features of {len(views)} views onto {means.shape[0]} Gaussians"
    with progress(label, len(views), console, unit=" views") as advance:
        mean, weight = lift_to_gaussians(render, means.shape[0], per_view(), on_view=advance)
    D = basis.shape[1] if basis is not None else targets.dim
    clip = mean[:, :D] @ basis.T if basis is not None else mean[:, :D]
    return clip, (mean[:, D:] if mean.shape[1] > D else None), weight


@torch.no_grad()
def best_basis(clip: Tensor, weight: Tensor, dims: int) -> tuple[Tensor, Tensor]:
    """The best ``dims``-dim basis ``U`` ``[D, dims]`` of per-Gaussian features ``clip`` ``[N, D]`` (unit length,
    weighted by visibility ``weight`` ``[N]``, uncentred: the decoder it becomes has no bias) and every
    Gaussian's coefficients ``[N, dims]`` (0 for unseen ones). Columns beyond the rank are zero."""
    seen = weight > 0
    unit = torch.nn.functional.normalize(clip[seen], dim=-1) * weight[seen, None].sqrt()
    _, _, vh = torch.linalg.svd(unit, full_matrices=False)
    U = vh[:dims].T  # [D, <=dims]: fewer when D or the Gaussians are fewer than dims
    U = torch.cat([U, U.new_zeros(U.shape[0], dims - U.shape[1])], dim=1).contiguous()
    return U, torch.nn.functional.normalize(clip, dim=-1) @ U
