"""Open-vocabulary segmentation of rendered views (``laser segment``) and the files it writes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from laser_gs.atomic import atomic_open
from laser_gs.backends.registry import Backend
from laser_gs.data.cameras import Cameras
from laser_gs.data.images import write_png
from laser_gs.data.scene import Scene
from laser_gs.errors import LaserError
from laser_gs.evaluation import head_outputs, head_probabilities
from laser_gs.visualize import colorize, heatmap, hstack, legend, overlay, to_uint8


def resolve_views(spec: str, scene: Scene) -> list[int]:
    """``annotated`` | ``all`` | comma-separated indices -> view indices (clear errors for bad ones)."""
    spec = spec.strip()
    if spec == "all":
        return list(range(scene.num_views))
    if spec == "annotated":
        if not scene.annotated_views:
            raise LaserError("the scene has no annotated views; use --views all or --views 0,3")
        return list(scene.annotated_views)
    try:
        views = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise LaserError(f"--views {spec!r}: expected 'annotated', 'all' or indices like 0,3,7") from None
    bad = [v for v in views if not 0 <= v < scene.num_views]
    if not views or bad:
        raise LaserError(f"--views {spec!r}: indices must be in 0..{scene.num_views - 1} (the scene has "
                         f"{scene.num_views} views)")
    return views


@torch.no_grad()
def segment_view(backend: Backend, cameras: Cameras, index: int, text: Tensor, head: str) -> tuple[Tensor, Tensor]:
    """``(rgb [H, W, 3], probabilities [H, W, C])`` of camera ``index`` for the prompts ``text`` ``[C, D]``."""
    out = backend.render(cameras, index, ("rgb",) + head_outputs(head), text)
    out = {k: v.cpu() for k, v in out.items()}
    return out["rgb"], head_probabilities(out, text.cpu(), head)


def slug(text: str) -> str:
    """A file-name-safe version of a prompt (``"red mug!"`` -> ``"red_mug"``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "prompt"


def write_segmentation(out_dir: Path, name: str, rgb: Tensor, probs: Tensor, prompts: list[str]) -> list[Path]:
    """Write one view's results; returns the paths.

    ``NAME_labels.png`` (palette), ``NAME_labels.npy`` (int16 ``[H, W]`` indices into the prompts),
    ``NAME_overlay.png`` (labels over the render, with a legend) and ``NAME_relevancy_<prompt>.png``
    (that prompt's probability as a heat map) per prompt.
    """
    out_dir = Path(out_dir)
    labels = probs.argmax(dim=-1).numpy()
    written = []
    path = out_dir / f"{name}_labels.png"
    write_png(path, colorize(labels, prompts))
    written.append(path)
    path = out_dir / f"{name}_labels.npy"
    with atomic_open(path, "wb") as fh:
        np.save(fh, labels.astype(np.int16))
    written.append(path)
    path = out_dir / f"{name}_overlay.png"
    write_png(path, hstack([to_uint8(rgb.numpy()), overlay(rgb.numpy(), labels, prompts),
                            legend(prompts, height=labels.shape[0])], ["render", "segmentation", ""]))
    written.append(path)
    for c, prompt in enumerate(prompts):
        path = out_dir / f"{name}_relevancy_{c}_{slug(prompt)}.png"
        write_png(path, heatmap(probs[..., c].numpy()))
        written.append(path)
    return written
