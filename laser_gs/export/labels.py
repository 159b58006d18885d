"""Class labels of 3D points from their semantic outputs (the same heads as evaluation)."""

from __future__ import annotations

from torch import Tensor

from laser_gs.semantics.calibration import add_offsets
from laser_gs.semantics.label import class_probabilities
from laser_gs.semantics.losses import segmentation_logits


def point_labels(feature: Tensor, label: Tensor | None, text: Tensor, tau: float = 0.2,
                 offsets: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(label [N] int64, score [N] float)``: argmax and probability of the ensemble head per point.

    Args:
        feature: ``[N, D]`` CLIP-space features of the points.
        label: ``[N, D]`` label-volume distributions of the points, or None (feature head only).
        text: ``[C, D]`` prompt embeddings.
        offsets: ``[C]`` the run's class calibration, added to the feature head's logits (or None).
    """
    logits = segmentation_logits(feature, text)
    prob = class_probabilities(add_offsets(logits, offsets), tau)
    if label is not None:
        prob = 0.5 * (prob + class_probabilities(segmentation_logits(label, text), tau))
    score, idx = prob.max(dim=-1)
    return idx, score
