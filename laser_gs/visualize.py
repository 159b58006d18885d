"""Pictures of segmentations: a fixed class palette, label maps, overlays, legends and panels."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw


def palette(n: int) -> np.ndarray:
    """``[n, 3]`` uint8 colours, well separated (golden-ratio hues, alternating lightness)."""
    out = []
    for i in range(n):
        h = (i * 0.618033988749895) % 1.0
        l = 0.5 if i % 2 == 0 else 0.65
        out.append([round(255 * c) for c in colorsys.hls_to_rgb(h, l, 0.75)])
    return np.asarray(out, dtype=np.uint8).reshape(n, 3)


def colorize(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``[H, W]`` int labels (-1 = none, black) -> ``[H, W, 3]`` uint8."""
    pal = np.concatenate([palette(n_classes), np.zeros((1, 3), np.uint8)])
    return pal[np.where(labels < 0, n_classes, labels)]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def overlay(rgb: np.ndarray, labels: np.ndarray, n_classes: int, alpha: float = 0.5) -> np.ndarray:
    """Blend class colours over an ``[H, W, 3]`` float or uint8 image."""
    base = rgb if rgb.dtype == np.uint8 else to_uint8(rgb)
    mixed = (1 - alpha) * base.astype(np.float32) + alpha * colorize(labels, n_classes).astype(np.float32)
    return mixed.round().astype(np.uint8)


def legend(names: list[str], height: int | None = None, width: int = 160) -> np.ndarray:
    """A column of colour swatches with class names, ``[height, width, 3]`` uint8."""
    row = 16
    height = max(height or 0, row * len(names) + 8)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, (name, colour) in enumerate(zip(names, palette(len(names)))):
        y = 4 + i * row
        draw.rectangle([4, y, 16, y + 12], fill=tuple(int(c) for c in colour))
        draw.text((22, y), name[:22], fill=(0, 0, 0))
    return np.asarray(img)


def hstack(images: list[np.ndarray], titles: list[str] | None = None, gap: int = 4) -> np.ndarray:
    """Panels side by side on white (optionally titled), padded to the tallest."""
    title_h = 14 if titles else 0
    h = max(im.shape[0] for im in images) + title_h
    w = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for i, im in enumerate(images):
        canvas.paste(Image.fromarray(im), (x, title_h))
        if titles:
            draw.text((x + 2, 1), titles[i], fill=(0, 0, 0))
        x += im.shape[1] + gap
    return np.asarray(canvas)


def heatmap(values: np.ndarray) -> np.ndarray:
    """``[H, W]`` values in [0, 1] -> ``[H, W, 3]`` uint8 (dark blue -> yellow)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    lo = np.array([20, 20, 90], np.float32)
    mid = np.array([200, 40, 80], np.float32)
    hi = np.array([255, 230, 60], np.float32)
    out = np.where(v < 0.5, lo + (mid - lo) * (v / 0.5), mid + (hi - mid) * ((v - 0.5) / 0.5))
    return out.round().astype(np.uint8)
