"""The LERF-OVS protocol: per-query relevancy masks (2D mIoU) and localisation accuracy.

Variant implemented (LangSplat's evaluation of the LERF-OVS labels, with the differences named):

- **Queries**: every category labelled in a frame is one query on that frame.
- **Relevancy** (LERF): for the query ``q`` and each negative ``n``, the pairwise softmax
  ``exp(10 cos_q) / (exp(10 cos_q) + exp(10 cos_n))``; the relevancy is its minimum over the negatives.
  LERF and LangSplat use four canonical phrases ("object", "things", "stuff", "texture") as negatives;
  a laser_gs run carries the text of its own classes only (no text encoder at evaluation time), so the
  negatives are the run's other classes. Relevancies are therefore not comparable to LERF's in absolute
  value, only in protocol.
- **mIoU**: the relevancy is rescaled to ``[0, 1]`` over the image (min-max, as LangSplat does before its
  threshold), the mask is ``> threshold`` (0.7 here equals LangSplat's 0.4 on its ``[-1, 1]`` rescale),
  IoU against the union of the category's polygons; mean over all (frame, query) pairs. LangSplat also
  smooths the relevancy with a 29-pixel box filter at full resolution; we do not (our images are
  evaluated at the loaded, usually downscaled, size).
- **Localisation accuracy**: the pixel of highest relevancy falls inside one of the category's boxes
  (LERF's definition); percent of (frame, query) pairs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from laser_gs.backends.protocol import Backend
from laser_gs.data.lerf_ovs import FrameLabels
from laser_gs.data.scene import Scene
from laser_gs.errors import LaserError
from laser_gs.evaluation import teacher_logits
from laser_gs.features.precomputed import FeatureSet
from laser_gs.query import pairwise_relevancy

#: LangSplat's softmax scale for the pairwise relevancy
RELEVANCY_SCALE = 10.0
#: mask threshold on the min-max rescaled relevancy
DEFAULT_THRESHOLD = 0.7


def relevancy(cos: Tensor, query: int) -> Tensor:
    """``[H, W, C]`` cosine scores -> ``[H, W]`` relevancy of class ``query`` against the other classes."""
    assert cos.dim() == 3 and cos.shape[-1] >= 2, f"expected [H, W, C >= 2] scores, got {tuple(cos.shape)}"
    H, W, C = cos.shape
    flat = cos.reshape(-1, C)
    others = torch.cat([flat[:, :query], flat[:, query + 1:]], dim=1)
    return pairwise_relevancy(flat[:, query], others, tau=1.0 / RELEVANCY_SCALE).reshape(H, W)


def query_scores(rel: Tensor, mask: Tensor, boxes: Tensor, threshold: float) -> tuple[float, bool]:
    """IoU (percent) of the thresholded relevancy ``[H, W]`` with ``mask`` ``[H, W]``, and whether its peak
    lies in one of ``boxes`` ``[K, 4]`` (x1, y1, x2, y2 in pixels)."""
    lo, hi = rel.min(), rel.max()
    pred = (rel - lo) / (hi - lo).clamp_min(1e-12) > threshold
    union = (pred | mask).sum().item()
    iou = 100.0 * (pred & mask).sum().item() / union if union else 0.0
    W = rel.shape[1]
    peak = int(rel.reshape(-1).argmax())
    x, y = peak % W + 0.5, peak // W + 0.5
    inside = bool(((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])).any())
    return iou, inside


def _class_index(classes: list[str]) -> dict[str, int]:
    return {c.strip().lower(): i for i, c in enumerate(classes)}


def check_categories(frames: list[FrameLabels], classes: list[str]) -> None:
    """Every labelled category must be one of the run's classes (case-insensitive)."""
    known = _class_index(classes)
    if len(classes) < 2:
        raise LaserError("the LERF-OVS relevancy needs at least two classes in the run (the others are negatives)")
    for fr in frames:
        missing = sorted(c for c in fr.masks if c.strip().lower() not in known)
        if missing:
            raise LaserError(f"unknown category {missing[0]!r} in the labels of view {fr.view}: the run's classes "
                             f"are {', '.join(classes)} (train with these categories in classes.txt)")


def score_frames(cos_per_view: dict[int, Tensor], frames: list[FrameLabels], classes: list[str],
                 threshold: float) -> dict[str, Any]:
    """mIoU and localisation accuracy over all (frame, query) pairs, and per category."""
    index = _class_index(classes)
    ious: dict[str, list[float]] = {}
    hits: dict[str, list[bool]] = {}
    for fr in frames:
        cos = cos_per_view[fr.view]
        for cat, mask in fr.masks.items():
            iou, hit = query_scores(relevancy(cos, index[cat.strip().lower()]), mask, fr.boxes[cat], threshold)
            ious.setdefault(cat, []).append(iou)
            hits.setdefault(cat, []).append(hit)
    all_iou = [v for vs in ious.values() for v in vs]
    all_hit = [h for hs in hits.values() for h in hs]
    return {"miou": sum(all_iou) / len(all_iou), "localization": 100.0 * sum(all_hit) / len(all_hit),
            "queries": len(all_iou),
            "per_class": {c: sum(v) / len(v) for c, v in ious.items()},
            "per_class_localization": {c: 100.0 * sum(h) / len(h) for c, h in hits.items()}}


@torch.no_grad()
def evaluate_lerf_ovs(backend: Backend, scene: Scene, frames: list[FrameLabels], text: Tensor,
                      features: FeatureSet | None = None, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """LERF-OVS scores of a run (rendered features) and of its 2D teacher (``features``) on ``frames``.

    Args:
        text: ``[C, D]`` text embeddings of ``scene.classes``.
    """
    check_categories(frames, scene.classes)
    assert text.dim() == 2 and text.shape[0] == len(scene.classes), "text must be [C, D] in scene.classes order"
    rendered, teacher = {}, {}
    for fr in frames:
        rendered[fr.view] = backend.render(scene.cameras, fr.view, ("logits",), text)["logits"].cpu().float()
        if features is not None:
            grid = features.grids[scene.image_names[fr.view]]
            teacher[fr.view] = teacher_logits(grid, text.cpu(), (scene.height, scene.width)).float()
    result = {"protocol": "lerf-ovs", "threshold": threshold, **score_frames(rendered, frames, scene.classes,
                                                                            threshold)}
    if teacher:
        t = score_frames(teacher, frames, scene.classes, threshold)
        result["teacher"] = {k: t[k] for k in ("miou", "localization", "per_class")}
    return result
