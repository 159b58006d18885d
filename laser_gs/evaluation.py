"""Evaluation of a trained run: 3D-OVS segmentation scores, PSNR, render speed, the 2D teacher.

Segmentation follows the 3D-OVS protocol (reference notes section 7; see
:mod:`laser_gs.metrics`) on the scene's annotated views. Three prediction
heads are scored: ``feature`` (the rendered CLIP feature against the text,
the released test path), ``label`` (the label volume against the text) and
``ensemble`` (their class probabilities averaged).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from laser_gs.backends.protocol import Backend
from laser_gs.choices import DEFAULT_HEAD, HEADS
from laser_gs.errors import LaserError
from laser_gs.data.images import write_png
from laser_gs.data.scene import Scene
from laser_gs.features.precomputed import FeatureSet
from laser_gs.metrics import psnr, segmentation_scores
from laser_gs.semantics.label import class_probabilities
from laser_gs.semantics.losses import segmentation_logits
from laser_gs.visualize import colorize, hstack, legend, to_uint8



def teacher_logits(grid: Tensor, text: Tensor, size: tuple[int, int]) -> Tensor:
    """``[H, W, C]`` cosine logits of a 2D feature grid ``[h, w, D]`` upsampled bilinearly to ``size``."""
    up = F.interpolate(grid.permute(2, 0, 1)[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    return segmentation_logits(up.permute(1, 2, 0), text)


def head_outputs(head: str) -> tuple[str, ...]:
    """The render outputs :func:`head_probabilities` needs for ``head`` (besides ``rgb``)."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
    return {"feature": ("logits",), "label": ("label",), "ensemble": ("logits", "label")}[head]


def label_map_outputs(head: str) -> tuple[str, ...]:
    """The cheapest render outputs that give ``head``'s label map (what render-speed figures time).

    The feature head's argmax needs only composited class scores (``segmentation``); the label and
    ensemble heads need their probabilities.
    """
    return ("segmentation",) if head == "feature" else head_outputs(head)


def head_probabilities(outputs: dict[str, Tensor], text: Tensor, head: str, tau: float = 0.2) -> Tensor:
    """``[H, W, C]`` class probabilities of one head from a render with ``logits`` (or ``feature``) and ``label``."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
    p_feat = None
    if head != "label":
        cos = outputs["logits"] if "logits" in outputs else segmentation_logits(outputs["feature"], text)
        p_feat = class_probabilities(cos, tau)
    p_label = class_probabilities(segmentation_logits(outputs["label"], text), tau) if head != "feature" else None
    if head == "feature":
        return p_feat
    if head == "label":
        return p_label
    return 0.5 * (p_feat + p_label)


@torch.no_grad()
def quick_miou(backend: Backend, scene: Scene, text: Tensor, head: str = DEFAULT_HEAD) -> float:
    """mIoU of ``head`` on the annotated views (no pictures, no teacher): the training curves' metric.

    The feature head's label maps come from composited class scores (``segmentation``, the cheapest
    render; equal to the logits' argmax away from exact ties).
    """
    preds = {}
    for v in scene.annotated_views:
        if head == "feature":
            preds[v] = backend.render(scene.cameras, v, ("segmentation",), text)["segmentation"].cpu()
            continue
        out = backend.render(scene.cameras, v, head_outputs(head), text)
        preds[v] = head_probabilities({k: o.cpu() for k, o in out.items()}, text.cpu(), head).argmax(dim=-1)
    return float(segmentation_scores(preds, scene.gt_masks, scene.classes)["miou"])


def time_render(backend: Backend, scene: Scene, view: int, outputs: tuple[str, ...], text: Tensor | None,
                repeats: int = 2) -> float:
    """Seconds per frame of ``backend.render`` (best of ``repeats`` after one warm-up)."""
    backend.render(scene.cameras, view, outputs, text)
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        backend.render(scene.cameras, view, outputs, text)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def evaluate_run(backend: Backend, scene: Scene, features: FeatureSet | None, text: Tensor | None,
                 out_dir: Path | None = None, head: str = DEFAULT_HEAD, timing: bool = True) -> dict[str, Any]:
    """Scores of a trained backend on ``scene``; writes prediction / GT panels to ``out_dir``.

    Args:
        backend: the trained model.
        scene: the scene it was trained on (annotated views are scored).
        features: the 2D features, for the teacher scores (None: no teacher).
        text: ``[C, D]`` class text embeddings in ``scene.classes`` order (None: no segmentation).
        out_dir: where ``<view>.png`` panels go (None: no pictures).
        head: the head reported as ``miou`` / ``accuracy``; all heads go in ``heads``.
    """
    result: dict[str, Any] = {"classes": list(scene.classes), "head": head}
    psnr_views = scene.splits.get("test") or scene.annotated_views or [0]
    with torch.no_grad():
        values = []
        for v in psnr_views:
            rgb = backend.render(scene.cameras, v, ("rgb",))["rgb"].cpu()
            values.append(psnr(rgb, scene.images[v]))
        result["psnr"] = float(np.mean(values))
        result["psnr_views"] = "test" if scene.splits.get("test") else "annotated"
        segment = text is not None and bool(scene.annotated_views)
        if segment:
            heads = backend.heads_available
            if head not in heads:
                raise LaserError(f"--head {head}: this run has the {', '.join(heads)} head(s) only")
            preds: dict[str, dict[int, Tensor]] = {h: {} for h in heads}
            teacher: dict[int, Tensor] = {}
            for v in scene.annotated_views:
                out = backend.render(scene.cameras, v, ("rgb", "logits") + (("label",) if "label" in heads else ()),
                                     text)
                out = {k: o.cpu() for k, o in out.items()}
                for h in heads:
                    preds[h][v] = head_probabilities(out, text.cpu(), h).argmax(dim=-1)
                if features is not None:
                    grid = features.grids[scene.image_names[v]]
                    teacher[v] = teacher_logits(grid, text.cpu(), (scene.height, scene.width)).argmax(dim=-1)
                if out_dir is not None:
                    _write_panel(Path(out_dir) / f"{scene.image_names[v]}.png", scene, v, out["rgb"],
                                 preds[head][v], teacher.get(v))
            gt = scene.gt_masks
            result["heads"] = {h: segmentation_scores(preds[h], gt, scene.classes) for h in heads}
            chosen = result["heads"][head]
            result.update(miou=chosen["miou"], accuracy=chosen["accuracy"], per_class=chosen["per_class"],
                          per_view=chosen["per_view"])
            if teacher:
                t = segmentation_scores(teacher, gt, scene.classes)
                result["teacher"] = {"miou": t["miou"], "accuracy": t["accuracy"], "per_class": t["per_class"]}
        if timing:
            view = psnr_views[0]
            result["resolution"] = [scene.width, scene.height]
            result["render_ms_rgb"] = 1000 * time_render(backend, scene, view, ("rgb",), None)
            result["render_fps"] = 1000 / result["render_ms_rgb"]
            if segment:
                ms = 1000 * time_render(backend, scene, view, ("rgb",) + label_map_outputs(head), text)
                result["render_ms_segmentation"] = ms
                result["render_fps_segmentation"] = 1000 / ms
    return result


def _write_panel(path: Path, scene: Scene, view: int, rgb: Tensor, pred: Tensor, teacher: Tensor | None) -> None:
    """``RGB | prediction | (teacher) | GT | legend`` for one annotated view."""
    C = scene.classes
    panels = [to_uint8(rgb.numpy()), colorize(pred.numpy(), C)]
    titles = ["render", "3D prediction"]
    if teacher is not None:
        panels.append(colorize(teacher.numpy(), C))
        titles.append("2D teacher")
    panels += [colorize(scene.gt_label_map(view).numpy(), C), legend(scene.classes, height=scene.height)]
    titles += ["ground truth", ""]
    write_png(path, hstack(panels, titles))


def training_evaluator(scene: Scene) -> Callable[[Backend, bool], dict[str, float]]:
    """The trainer's periodic evaluation: held-out PSNR on ``scene.eval_view`` and, in stage 2 (``semantics``),
    the feature head's mIoU on the annotated views (the training curves of the benchmarks)."""

    def evaluate(backend: Backend, semantics: bool) -> dict[str, float]:
        view = scene.eval_view
        rgb = backend.render(scene.cameras, view, ("rgb",))["rgb"].cpu()
        metrics = {"test_psnr": psnr(rgb, scene.images[view])}
        if semantics and scene.annotated_views and backend.text is not None:
            metrics["miou"] = quick_miou(backend, scene, backend.text)
        return metrics

    return evaluate
