"""Pictures of segmentations: a fixed class palette, label maps, overlays, legends and panels."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Colour words in class names and the hue (HLS, 0..1; None: achromatic) and lightness they are drawn with.
COLOUR_WORDS: dict[str, tuple[float | None, float]] = {
    "red": (0.0, 0.45), "orange": (0.08, 0.5), "brown": (0.07, 0.3), "yellow": (0.15, 0.5), "gold": (0.13, 0.45),
    "green": (0.33, 0.38), "cyan": (0.5, 0.45), "teal": (0.47, 0.32), "blue": (0.62, 0.45), "navy": (0.64, 0.25),
    "purple": (0.78, 0.4), "violet": (0.76, 0.55), "pink": (0.92, 0.7), "magenta": (0.86, 0.5),
    "black": (None, 0.12), "white": (None, 0.95), "grey": (None, 0.55), "gray": (None, 0.55), "silver": (None, 0.75),
}


def _colour_word(name: str) -> str | None:
    words = [w.strip(".,;:!?()'\"") for w in name.lower().replace("-", " ").split()]
    return next((w for w in words if w in COLOUR_WORDS), None)


def palette(names: list[str] | int) -> np.ndarray:
    """``[C, 3]`` uint8 colours for class names, well separated and never contradicting a colour word.

    A name with a colour word ("red apple", "blue mug") is drawn in that colour, in a different lightness for
    each class sharing the word; the others take golden-ratio hues away from the hues the colour words use.
    An int ``n`` gives ``n`` colours for unnamed series.
    """
    if isinstance(names, int):
        names = [""] * names
    words = [_colour_word(n) for n in names]
    used = [COLOUR_WORDS[w][0] for w in words if w is not None and COLOUR_WORDS[w][0] is not None]
    out, repeats, k = [], {}, 0
    for word in words:
        if word is not None:
            hue, light = COLOUR_WORDS[word]
            j = repeats[word] = repeats.get(word, -1) + 1
            light = min(0.85, light + 0.18 * (j % 3)) if j else light  # red apple, then a lighter red book
            rgb = colorsys.hls_to_rgb(hue or 0.0, light, 0.0 if hue is None else 0.8)
        else:
            while True:  # golden-ratio hues, skipping those near a colour word's hue
                hue = (k * 0.618033988749895 + 0.1) % 1.0
                k += 1
                if all(min(abs(hue - u), 1 - abs(hue - u)) > 0.06 for u in used) or k > 64:
                    break
            rgb = colorsys.hls_to_rgb(hue, 0.5 if k % 2 else 0.62, 0.7)
        out.append([round(255 * c) for c in rgb])
    return np.asarray(out, dtype=np.uint8).reshape(len(names), 3)


def colorize(labels: np.ndarray, names: list[str]) -> np.ndarray:
    """``[H, W]`` int labels (-1 = none, black) -> ``[H, W, 3]`` uint8 in :func:`palette` colours of ``names``."""
    pal = np.concatenate([palette(names), np.zeros((1, 3), np.uint8)])
    return pal[np.where(labels < 0, len(names), labels)]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def overlay(rgb: np.ndarray, labels: np.ndarray, names: list[str], alpha: float = 0.5) -> np.ndarray:
    """Blend the class colours of ``names`` over an ``[H, W, 3]`` float or uint8 image."""
    base = rgb if rgb.dtype == np.uint8 else to_uint8(rgb)
    mixed = (1 - alpha) * base.astype(np.float32) + alpha * colorize(labels, names).astype(np.float32)
    return mixed.round().astype(np.uint8)


def legend(names: list[str], height: int | None = None, width: int = 220, font_size: int = 18) -> np.ndarray:
    """A column of colour swatches with class names, ``[height, width, 3]`` uint8 (large enough to read when
    a report scales the panel down)."""
    row = font_size + 8
    height = max(height or 0, row * len(names) + 8)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_size)
    for i, (name, colour) in enumerate(zip(names, palette(names))):
        y = 4 + i * row
        draw.rectangle([4, y + 2, 4 + font_size, y + 2 + font_size], fill=tuple(int(c) for c in colour),
                       outline=(80, 80, 80))
        draw.text((12 + font_size, y), name[:18], fill=(0, 0, 0), font=font)
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
