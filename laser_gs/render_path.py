"""Writing rendered frame sequences: an animated GIF with Pillow (no video codec needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from laser_gs.atomic import atomic_open


def write_gif(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Animated, looping GIF of ``[H, W, 3]`` uint8 frames (adaptive palette per frame), written atomically."""
    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in frames]
    with atomic_open(path, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:], duration=max(1, 1000 // fps),
                       loop=0)
    return path
