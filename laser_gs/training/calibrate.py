"""The trainer's last step: calibrate the run's classes on its own renders of the training views."""

from __future__ import annotations

import torch
from rich.console import Console

from laser_gs.backends.protocol import Backend
from laser_gs.data.scene import Scene
from laser_gs.progress import progress
from laser_gs.semantics.calibration import (CALIBRATION_STRIDE, CALIBRATION_VIEWS, PromptOffsets, calibration_views,
                                            class_offsets)


def calibrate_classes(backend: Backend, scene: Scene, console: Console, max_views: int = CALIBRATION_VIEWS,
                      stride: int = CALIBRATION_STRIDE) -> dict[str, float]:
    """Set ``backend.heads.prompt_offsets`` for the run's classes from the logits it renders on up to
    ``max_views`` evenly spaced training views (every ``stride``-th pixel); returns class -> offset (non-zero
    ones only)."""
    text = backend.text
    backend.heads.prompt_offsets = PromptOffsets()  # render uncalibrated
    if text is None or text.shape[0] < 2:
        return {}
    views = calibration_views(scene.train_views, max_views)
    rows = []
    with progress("class calibration", len(views), console, unit=" views") as advance:
        for v in views:
            logits = backend.render(scene.cameras, v, ("logits",), text)["logits"]
            rows.append(logits.reshape(-1, logits.shape[-1])[::stride].cpu())
            advance()
    offsets = class_offsets(torch.cat(rows))
    backend.heads.prompt_offsets = PromptOffsets(text, offsets)
    raised = {c: float(o) for c, o in zip(backend.classes, offsets) if o > 0}
    if raised:
        console.log("class calibration: " + ", ".join(f"'{c}' +{o:.3f}" for c, o in raised.items())
                    + " (no region of the scene scored highest for it)")
    else:
        console.log("class calibration: every class wins a region of the scene; no offsets")
    return raised
