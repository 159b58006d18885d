"""Device choice and the learning-rate decay of the trainer's schedules."""

from __future__ import annotations

import torch

from laser_gs.errors import LaserError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an unavailable CUDA request is a user error."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LaserError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise LaserError(f"--device {name!r}: choose 'auto', 'cpu' or 'cuda'")
    return torch.device(name)


def decayed_lr(lr0: float, decay: float, steps_since_reset: int, stage_iters: int) -> float:
    """TensoRF's multiplicative decay: ``lr0 * decay ** (steps / stage_iters)``."""
    return lr0 * decay ** (steps_since_reset / max(1, stage_iters))
