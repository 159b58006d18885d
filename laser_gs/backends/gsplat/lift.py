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

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

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
