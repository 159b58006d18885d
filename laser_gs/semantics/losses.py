"""Distillation, segmentation logits and text augmentation (paper Eq. 3-5, 21-23)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def segmentation_logits(features: Tensor, text: Tensor) -> Tensor:
    """Cosine logits ``z = cos(F, T)`` ``[..., C]`` of features ``[..., D]`` against text ``[C, D]`` (Eq. 4, 5)."""
    return F.normalize(features, dim=-1) @ F.normalize(text, dim=-1).T


def distillation_loss(rendered: Tensor, target: Tensor) -> Tensor:
    """Feature part of Eq. 3: mean ``1 - cos(F^(r), F(r))``; the target carries no gradient.

    Args:
        rendered: ``[R, D]`` rendered features.
        target: ``[R, D]`` (adapted) CLIP features of the same rays.
    """
    return (1.0 - F.cosine_similarity(rendered, target.detach(), dim=-1)).mean()


def augment_prompts(prompts: list[str]) -> list[str]:
    """The simplified text augmentation of section 3.4: each prompt repeated twice ("mug" -> "mug mug")."""
    return [f"{p} {p}" for p in prompts]


def minmax_per_view(logits: Tensor, eps: float = 1e-6) -> Tensor:
    """Min-max normalise each class over the spatial axes of each view (Eq. 22).

    Args:
        logits: ``[V, h, w, C]`` (or ``[V, P, C]``) logits of whole views.

    Returns:
        the same shape, each (view, class) slice mapped to [0, 1]; a constant slice maps to 0.
    """
    flat = logits.reshape(logits.shape[0], -1, logits.shape[-1])
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(eps)).reshape(logits.shape)


def text_aug_targets(clip_grids: Tensor, text_aug: Tensor) -> Tensor:
    """Per-view normalised relevancy of the augmented prompts, ``[V, h, w, C]`` (Eq. 21-22).

    Computed on whole views of (un-adapted) CLIP features, so the min and max
    are those of the view, not of whichever rays a batch happens to hold.

    Args:
        clip_grids: ``[V, h, w, D]`` CLIP feature grids.
        text_aug: ``[C, D]`` augmented text features.
    """
    with torch.no_grad():
        return minmax_per_view(segmentation_logits(clip_grids, text_aug))


def text_aug_loss(pred_cos: Tensor, target: Tensor) -> Tensor:
    """Eq. 23 as a loss: mean over rays of ``1 - cos_C(z_I(r), zbar_I(r))``.

    Args:
        pred_cos: ``[R, C]`` cosine logits of the adapted CLIP features with the plain text.
        target: ``[R, C]`` rows of :func:`text_aug_targets` for the same rays (no gradient).
    """
    return (1.0 - F.cosine_similarity(pred_cos, target.detach(), dim=-1)).mean()
