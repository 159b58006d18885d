"""Helpers every backend's schedule uses: device choice, iteration overrides, learning-rate decay."""

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


def split_iterations(total: int, stage_iters: list[int]) -> list[int]:
    """Share ``total`` iterations across stages in the preset's proportions (each stage gets >= 1)."""
    base = sum(stage_iters)
    out = [max(1, round(total * n / base)) for n in stage_iters]
    out[-1] = max(1, total - sum(out[:-1])) if len(out) > 1 else total
    return out


def scale_steps(steps: tuple[int, ...], old: int, new: int) -> tuple[int, ...]:
    """Move scheduled steps (upsampling, joint start, ...) proportionally when a stage is shortened."""
    return tuple(sorted({max(1, round(s * new / old)) for s in steps if round(s * new / old) < new}))


def decayed_lr(lr0: float, decay: float, steps_since_reset: int, stage_iters: int) -> float:
    """TensoRF's multiplicative decay: ``lr0 * decay ** (steps / stage_iters)``."""
    return lr0 * decay ** (steps_since_reset / max(1, stage_iters))
