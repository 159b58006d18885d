"""Small line plots as PNG arrays with Pillow (benchmark figures without a plotting dependency)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from laser_gs.visualize import palette


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks between ``10**lo`` and ``10**hi``."""
    out = []
    for e in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo <= math.log10(v) <= hi:
                out.append(v)
    return out


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def line_plot(series: dict[str, tuple[list[float], list[float]]], title: str, xlabel: str, ylabel: str,
              size: tuple[int, int] = (640, 400), log_x: bool = False, log_y: bool = False,
              markers: bool = True) -> np.ndarray:
    """``[H, W, 3]`` uint8 plot of named ``(xs, ys)`` series with axes, ticks and a legend (optionally log10 axes)."""
    W, H = size
    left, right, top, bottom = 64, 16, 30, 48
    img = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    fx = (lambda v: math.log10(max(v, 1e-12))) if log_x else (lambda v: v)
    fy = (lambda v: math.log10(max(v, 1e-12))) if log_y else (lambda v: v)
    xs_all = [fx(x) for xs, _ in series.values() for x in xs]
    ys_all = [fy(y) for _, ys in series.values() for y in ys if math.isfinite(y)]
    if not xs_all or not ys_all:
        raise ValueError("nothing to plot")
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    pad = 0.05 * ((y1 - y0) or 1.0) if not log_y else 0.1
    y0, y1 = y0 - pad, y1 + pad
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (fx(x) - x0) / (x1 - x0) * (W - left - right),
                H - bottom - (fy(y) - y0) / (y1 - y0) * (H - top - bottom))

    draw.rectangle([left, top, W - right, H - bottom], outline=(0, 0, 0))
    yticks = _log_ticks(y0, y1) if log_y else _ticks(y0, y1)
    for t in yticks:
        _, y = px(10 ** x0 if log_x else x0, t)
        draw.line([left - 4, y, left, y], fill=(0, 0, 0))
        draw.line([left + 1, y, W - right - 1, y], fill=(235, 235, 235))
        draw.text((4, y - 6), _fmt(t), fill=(0, 0, 0))
    xticks = _log_ticks(x0, x1) if log_x else _ticks(x0, x1)
    for t in xticks:
        x, _ = px(t, y0)
        draw.line([x, H - bottom, x, H - bottom + 4], fill=(0, 0, 0))
        draw.text((x - 10, H - bottom + 6), _fmt(t), fill=(0, 0, 0))
    draw.text((left, 8), title, fill=(0, 0, 0))
    draw.text(((W - len(xlabel) * 6) // 2, H - 18), xlabel, fill=(0, 0, 0))
    draw.text((4, top - 16), ylabel, fill=(0, 0, 0))
    colours = palette(max(1, len(series)))
    for i, (name, (xs, ys)) in enumerate(series.items()):
        c = tuple(int(v) for v in colours[i])
        pts = [px(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
        if len(pts) > 1:
            draw.line(pts, fill=c, width=2)
        if markers:
            for x, y in pts:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=c)
        ly = top + 6 + 14 * i
        draw.rectangle([W - right - 150, ly, W - right - 140, ly + 10], fill=c)
        draw.text((W - right - 135, ly - 1), name[:22], fill=(0, 0, 0))
    return np.asarray(img)
