"""Self-contained HTML reports (``report.html`` of ``laser eval`` and ``laser bench``).

One file a user can open anywhere: pictures are inline ``data:`` PNGs, the
style is inline, and nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from laser_gs.atomic import atomic_write_text

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:.8em 0}figcaption{font-size:.9em;color:#555}img{max-width:100%;image-rendering:pixelated}
.meta{color:#666;font-size:.9em}
.legend{font-size:1.05em}.swatch{display:inline-block;margin:0 1.2em .4em 0;white-space:nowrap}
.swatch i{display:inline-block;width:1.1em;height:1.1em;margin-right:.4em;vertical-align:-.15em;border:1px solid #555}
"""


def png_data_uri(image: np.ndarray | Path) -> str:
    """``data:image/png;base64,...`` of an ``[H, W, 3]`` uint8 array or a PNG file."""
    if isinstance(image, Path):
        data = image.read_bytes()
    else:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return html.escape(str(value))


@dataclass
class Report:
    """An HTML page built from headings, tables, figures and notes, in order."""

    title: str
    meta: str = ""
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def legend(self, names: list[str]) -> None:
        """The class colours as large HTML swatches (readable whatever the pictures are scaled to)."""
        from laser_gs.visualize import palette

        items = "".join(f'<span class="swatch"><i style="background:rgb({r},{g},{b})"></i>{html.escape(n)}</span>'
                        for n, (r, g, b) in zip(names, palette(names).tolist()))
        self.parts.append(f'<p class="legend">{items}</p>')

    def figure(self, image: np.ndarray | Path, caption: str) -> None:
        self.parts.append(f'<figure><img alt="{html.escape(caption)}" src="{png_data_uri(image)}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def render(self) -> str:
        return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}"
                f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
                f"<p class=\"meta\">{html.escape(self.meta)}</p>{''.join(self.parts)}</body></html>\n")

    def write(self, path: Path) -> Path:
        atomic_write_text(path, self.render())
        return path


def eval_report(result: dict[str, Any], pictures: list[Path]) -> Report:
    """The page of one ``laser eval`` result (its metrics dict) with the prediction panels."""
    rep = Report(f"laser eval: {result.get('run', '')}",
                 meta=f"backend {result.get('backend')}, preset {result.get('preset')}")
    rep.heading("Scores")
    teacher = result.get("teacher") or {}
    rows: list[list[Any]] = []
    if "miou" in result:
        rows.append([f"mIoU % ({result['head']} head)", result["miou"], teacher.get("miou", "-")])
        rows.append(["accuracy %", result["accuracy"], teacher.get("accuracy", "-")])
        for head, s in result.get("heads", {}).items():
            if head != result["head"]:
                rows.append([f"mIoU % ({head} head)", s["miou"], ""])
    rows.append([f"PSNR dB ({result.get('psnr_views')} views)", result["psnr"], ""])
    if "render_ms_rgb" in result:
        rows.append(["render RGB ms/frame", result["render_ms_rgb"], ""])
    if "render_ms_segmentation" in result:
        rows.append(["render RGB + segmentation ms/frame", result["render_ms_segmentation"], ""])
    rep.table(["metric", "3D (this run)", "2D teacher"], rows)
    if result.get("per_class"):
        rep.heading("Per-class IoU %")
        names = list(result["per_class"])
        body = [["this run"] + [result["per_class"][n] for n in names]]
        if teacher.get("per_class"):
            body.append(["2D teacher"] + [teacher["per_class"][n] for n in names])
        rep.table([""] + names, body)
    if pictures:
        rep.heading("Annotated views: render | 3D prediction | 2D teacher | ground truth")
        if result.get("classes"):
            rep.legend(result["classes"])
        for path in pictures:
            rep.figure(path, path.stem)
    return rep


def bench_report(results: list[dict[str, Any]]) -> Report:
    """The page of a ``laser bench`` comparison."""
    rep = Report("laser bench", meta=", ".join(sorted({f"{r['device']} ({r['device_name']})" for r in results})))
    rep.heading("Render speed")
    base = results[0].get("ms_segmentation") or results[0]["ms_rgb"]
    rows = []
    for r in results:
        ms = r.get("ms_segmentation") or r["ms_rgb"]
        w, h = r["resolution"]
        rows.append([r["run"], r["backend"], f"{w}x{h}", r["ms_rgb"], r["fps_rgb"], r.get("ms_segmentation", "-"),
                     r.get("fps_segmentation", "-"), r.get("peak_mb_segmentation", r.get("peak_mb_rgb")),
                     r.get("miou", "-"), f"{base / ms:.1f}x"])
    rep.table(["run", "backend", "size", "RGB ms", "RGB FPS", "RGB+seg ms", "RGB+seg FPS", "peak MB", "mIoU %",
               "speed-up"], rows)
    return rep
