"""Segmentation and image metrics with the 3D-OVS protocol.

3D-OVS (and Laser) score each annotated view separately: per class, IoU of the
predicted one-hot map against the GT mask, where a class absent from both GT
and prediction scores 0 (scikit-learn's ``zero_division`` default); mIoU is the
mean over all (view, class) pairs. Accuracy is exact per-pixel match of the
one-hot rows, so pixels with no GT class, or several, always count as wrong.
"""

from __future__ import annotations

import torch
from torch import Tensor


def per_class_iou(pred: Tensor, gt_masks: Tensor) -> Tensor:
    """IoU per class for one view.

    Args:
        pred: ``[H, W]`` int64 predicted class index.
        gt_masks: ``[C, H, W]`` bool GT masks.

    Returns:
        ``[C]`` float64 IoU; 0 where the class is absent from both.
    """
    C = gt_masks.shape[0]
    pred_1h = torch.nn.functional.one_hot(pred.clamp_min(0), C).permute(2, 0, 1).bool()
    pred_1h &= (pred >= 0)[None]
    inter = (pred_1h & gt_masks).flatten(1).sum(1).double()
    union = (pred_1h | gt_masks).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(union))


def pixel_accuracy(pred: Tensor, gt_masks: Tensor) -> float:
    """Fraction of pixels whose one-hot prediction equals the GT row exactly."""
    C = gt_masks.shape[0]
    pred_1h = torch.nn.functional.one_hot(pred.clamp_min(0), C).permute(2, 0, 1).bool()
    pred_1h &= (pred >= 0)[None]
    return float((pred_1h == gt_masks).all(dim=0).double().mean())


def segmentation_scores(preds: dict[int, Tensor], gt: dict[int, Tensor], classes: list[str]) -> dict:
    """3D-OVS scores over annotated views.

    Args:
        preds: view index -> ``[H, W]`` predicted class index.
        gt: view index -> ``[C, H, W]`` bool masks (same keys as ``preds``).
        classes: class names, for the per-class table.

    Returns:
        ``{"miou": %, "accuracy": %, "per_class": {name: %}, "per_view": {view: {...}}}``.
    """
    if set(preds) != set(gt):
        raise ValueError(f"prediction views {sorted(preds)} differ from GT views {sorted(gt)}")
    ious = torch.stack([per_class_iou(preds[v], gt[v]) for v in sorted(gt)])  # [V, C]
    accs = [pixel_accuracy(preds[v], gt[v]) for v in sorted(gt)]
    return {
        "miou": 100.0 * float(ious.mean()),
        "accuracy": 100.0 * sum(accs) / len(accs),
        "per_class": {c: 100.0 * float(ious[:, i].mean()) for i, c in enumerate(classes)},
        "per_view": {int(v): {"miou": 100.0 * float(ious[k].mean()), "accuracy": 100.0 * accs[k]}
                     for k, v in enumerate(sorted(gt))},
    }


def psnr(pred: Tensor, target: Tensor) -> float:
    """PSNR in dB of images in [0, 1] (any matching shapes)."""
    mse = torch.mean((pred.float() - target.float()) ** 2).clamp_min(1e-12)
    return float(-10.0 * torch.log10(mse))
