"""Frames along camera paths: one picture per camera (render | segmentation | legend) and an animated GIF
with Pillow (no video codec needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from laser_gs.atomic import atomic_open
from laser_gs.backends.protocol import Backend
from laser_gs.data.cameras import Cameras
from laser_gs.segment import segment_view
from laser_gs.visualize import hstack, legend, overlay, to_uint8


def write_gif(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Animated, looping GIF of ``[H, W, 3]`` uint8 frames (adaptive palette per frame), written atomically."""
    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in frames]
    with atomic_open(path, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:], duration=max(1, 1000 // fps),
                       loop=0)
    return path


def render_frame(backend: Backend, cameras: Cameras, index: int, text: Tensor | None, names: list[str] | None,
                 head: str) -> np.ndarray:
    """``[H, W', 3]`` uint8 picture of camera ``index``: the render, and with ``text`` ``[C, D]`` the segmentation
    overlay and a legend of ``names`` beside it."""
    if text is None:
        return to_uint8(backend.render(cameras, index, ("rgb",))["rgb"].cpu().numpy())
    rgb, probs = segment_view(backend, cameras, index, text, head)
    labels = probs.argmax(-1).numpy()
    return hstack([to_uint8(rgb.numpy()), overlay(rgb.numpy(), labels, names),
                   legend(names, height=cameras.height)])
