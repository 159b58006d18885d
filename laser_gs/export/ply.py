"""PLY writers.

Gaussians use the Inria 3DGS vertex layout that standard viewers read, in this
order: ``x y z nx ny nz f_dc_0..2 f_rest_0..44 opacity scale_0..2 rot_0..3``
(``f_rest`` channel-major, zero-padded to SH degree 3; opacity as a logit,
scales as logs, rotations as w x y z), followed by our ``label`` (int32 index
into the prompts, -1 without prompts) and ``label_score`` (float32). The
prompts are header lines ``comment class <i> <prompt>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from plyfile import PlyData, PlyElement
from torch import Tensor

from laser_gs.atomic import atomic_open
from laser_gs.backends.gsplat.model import SH_C0
from laser_gs.export.labels import point_labels
from laser_gs.visualize import palette

if TYPE_CHECKING:
    from laser_gs.backends.gsplat.backend import GsplatBackend

SH_REST = 45  # 15 coefficients x 3 channels for degree 3
GAUSSIAN_PROPERTIES = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                       + [f"f_rest_{i}" for i in range(SH_REST)]
                       + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def _comments(prompts: list[str] | None) -> list[str]:
    return ["laser_gs labeled export"] + [f"class {i} {p}" for i, p in enumerate(prompts or [])]


def read_ply_classes(path: Path) -> list[str]:
    """The prompts stored in a PLY header by this module, in index order."""
    out = {}
    for c in PlyData.read(str(path)).comments:
        m = re.match(r"class (\d+) (.*)$", c)
        if m:
            out[int(m.group(1))] = m.group(2)
    return [out[i] for i in sorted(out)]


def _write(path: Path, vertex: np.ndarray, prompts: list[str] | None) -> Path:
    el = PlyElement.describe(vertex, "vertex")
    with atomic_open(path, "wb") as fh:
        PlyData([el], text=False, comments=_comments(prompts)).write(fh)
    return path


def _structured(columns: dict[str, np.ndarray]) -> np.ndarray:
    dtype = [(k, "i4" if v.dtype.kind == "i" else ("u1" if v.dtype == np.uint8 else "f4")) for k, v in columns.items()]
    arr = np.empty(len(next(iter(columns.values()))), dtype=dtype)
    for k, v in columns.items():
        arr[k] = v
    return arr


def colored_path(path: Path) -> Path:
    return path.with_name(path.stem + "_by_label" + path.suffix)


@torch.no_grad()
def export_gaussians(backend: "GsplatBackend", path: Path, prompts: list[str] | None, text: Tensor | None,
                     color_by_label: bool = False, keep: Tensor | None = None) -> list[Path]:
    """Write the Gaussians (and with ``color_by_label`` a copy coloured by class) as 3DGS PLY.

    ``keep`` ``[N]`` bool writes only those Gaussians (a query's selection).
    """
    p = {k: v.detach().cpu() for k, v in backend.params.items()}
    sem = backend.semantic_points() if text is not None and backend.heads is not None else None
    if keep is not None:
        keep = keep.cpu()
        p = {k: v[keep] for k, v in p.items()}
        sem = {k: v[keep] for k, v in sem.items()} if sem is not None else None
    n = p["means"].shape[0]
    rest = p["shN"].transpose(1, 2).reshape(n, -1)  # channel-major, as the Inria layout
    rest = torch.cat([rest, rest.new_zeros(n, SH_REST - rest.shape[1])], dim=1) if rest.shape[1] < SH_REST else rest
    cols: dict[str, np.ndarray] = {}
    for i, axis in enumerate("xyz"):
        cols[axis] = p["means"][:, i].numpy()
    for name in ("nx", "ny", "nz"):
        cols[name] = np.zeros(n, np.float32)
    dc = p["sh0"][:, 0].numpy()
    for i in range(3):
        cols[f"f_dc_{i}"] = dc[:, i]
    for i in range(SH_REST):
        cols[f"f_rest_{i}"] = rest[:, i].numpy()
    cols["opacity"] = p["opacities"].numpy()
    for i in range(3):
        cols[f"scale_{i}"] = p["scales"][:, i].numpy()
    quats = torch.nn.functional.normalize(p["quats"], dim=-1)
    for i in range(4):
        cols[f"rot_{i}"] = quats[:, i].numpy()
    labels = np.full(n, -1, np.int32)
    scores = np.zeros(n, np.float32)
    if sem is not None:
        idx, score = point_labels(sem["feature"], sem["label"], text.cpu())
        labels, scores = idx.numpy().astype(np.int32), score.numpy().astype(np.float32)
    cols["label"] = labels
    cols["label_score"] = scores
    written = [_write(path, _structured(cols), prompts)]
    if color_by_label:
        if text is None:
            raise ValueError("--color-by-label needs prompts")
        rgb = palette(len(prompts))[labels].astype(np.float32) / 255.0
        for i in range(3):
            cols[f"f_dc_{i}"] = (rgb[:, i] - 0.5) / SH_C0
        for i in range(SH_REST):
            cols[f"f_rest_{i}"] = np.zeros(n, np.float32)
        written.append(_write(colored_path(path), _structured(cols), prompts))
    return written


def export_points(path: Path, xyz: Tensor, rgb: Tensor, labels: Tensor | None, scores: Tensor | None,
                  prompts: list[str] | None, color_by_label: bool = False) -> list[Path]:
    """A coloured point cloud (``x y z red green blue label label_score``), optionally a class-coloured copy."""
    n = xyz.shape[0]
    colour = (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    cols: dict[str, np.ndarray] = {"x": xyz[:, 0].numpy(), "y": xyz[:, 1].numpy(), "z": xyz[:, 2].numpy(),
                                   "red": colour[:, 0], "green": colour[:, 1], "blue": colour[:, 2],
                                   "label": (labels.numpy() if labels is not None else np.full(n, -1)).astype(np.int32),
                                   "label_score": (scores.numpy() if scores is not None else np.zeros(n)).astype(
                                       np.float32)}
    written = [_write(path, _structured(cols), prompts)]
    if color_by_label:
        pal = palette(max(1, len(prompts or [])))[np.clip(cols["label"], 0, None)]
        cols["red"], cols["green"], cols["blue"] = pal[:, 0], pal[:, 1], pal[:, 2]
        written.append(_write(colored_path(path), _structured(cols), prompts))
    return written
