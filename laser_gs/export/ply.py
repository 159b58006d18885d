"""PLY writers for :class:`~laser_gs.export.records.PointSet` records (no backend is imported here).

Gaussians use the Inria 3DGS vertex layout that standard viewers read, in this
order: ``x y z nx ny nz f_dc_0..2 f_rest_0..44 opacity scale_0..2 rot_0..3``
(``f_rest`` channel-major, zero-padded to SH degree 3; opacity as a logit,
scales as logs, rotations as w x y z). Other point sets are ``x y z red green
blue``. Labeled exports add ``label`` (int32 index into the prompts) and
``label_score`` (float32), and the prompts as header lines ``comment class <i>
<prompt>``; exports without semantics have neither column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from laser_gs.atomic import atomic_open
from laser_gs.export.records import GaussianAttributes, PointSet
from laser_gs.spherical_harmonics import SH_C0
from laser_gs.visualize import palette

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


def _write(path: Path, columns: dict[str, np.ndarray], prompts: list[str] | None) -> Path:
    dtype = [(k, "i4" if v.dtype.kind == "i" else ("u1" if v.dtype == np.uint8 else "f4")) for k, v in columns.items()]
    vertex = np.empty(len(next(iter(columns.values()))), dtype=dtype)
    for k, v in columns.items():
        vertex[k] = v
    with atomic_open(path, "wb") as fh:
        PlyData([PlyElement.describe(vertex, "vertex")], text=False, comments=_comments(prompts)).write(fh)
    return path


def colored_path(path: Path) -> Path:
    return path.with_name(path.stem + "_by_label" + path.suffix)


def _gaussian_columns(xyz: torch.Tensor, g: GaussianAttributes, dc: np.ndarray) -> dict[str, np.ndarray]:
    """The Inria layout; ``dc`` ``[P, 3]`` SH DC coefficients (the colour, possibly replaced by class colours)."""
    n = xyz.shape[0]
    rest = g.shN.transpose(1, 2).reshape(n, -1)  # channel-major, as the Inria layout
    rest = torch.cat([rest, rest.new_zeros(n, SH_REST - rest.shape[1])], dim=1) if rest.shape[1] < SH_REST else rest
    cols: dict[str, np.ndarray] = {axis: xyz[:, i].numpy() for i, axis in enumerate("xyz")}
    cols.update({name: np.zeros(n, np.float32) for name in ("nx", "ny", "nz")})
    cols.update({f"f_dc_{i}": dc[:, i] for i in range(3)})
    cols.update({f"f_rest_{i}": rest[:, i].numpy() for i in range(SH_REST)})
    cols["opacity"] = g.opacities.numpy()
    cols.update({f"scale_{i}": g.scales[:, i].numpy() for i in range(3)})
    quats = torch.nn.functional.normalize(g.quats, dim=-1)
    cols.update({f"rot_{i}": quats[:, i].numpy() for i in range(4)})
    return cols


def write_ply(path: Path, points: PointSet, labels: np.ndarray | None = None, scores: np.ndarray | None = None,
              prompts: list[str] | None = None, color_by_label: bool = False) -> list[Path]:
    """Write ``points`` (3DGS layout when it has Gaussians) and, with ``color_by_label``, a class-coloured copy.

    Args:
        labels: ``[P]`` class index per point (None: an export without semantics, no label columns).
        scores: ``[P]`` probability of that class.
        prompts: the class names, stored in the header.
    """
    path = Path(path)
    g = points.gaussians
    if g is not None:
        cols = _gaussian_columns(points.xyz, g, g.sh0[:, 0].numpy())
    else:
        rgb = (points.rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        cols = {"x": points.xyz[:, 0].numpy(), "y": points.xyz[:, 1].numpy(), "z": points.xyz[:, 2].numpy(),
                "red": rgb[:, 0], "green": rgb[:, 1], "blue": rgb[:, 2]}
    if labels is not None:
        cols["label"] = labels.astype(np.int32)
        cols["label_score"] = scores.astype(np.float32)
    written = [_write(path, cols, prompts)]
    if color_by_label:
        if labels is None or not prompts:
            raise ValueError("colouring by label needs labels and prompts")
        pal = palette(prompts)[labels]
        if g is not None:
            dc = (pal.astype(np.float32) / 255.0 - 0.5) / SH_C0
            cols.update({f"f_dc_{i}": dc[:, i] for i in range(3)})
            cols.update({f"f_rest_{i}": np.zeros(len(points), np.float32) for i in range(SH_REST)})
        else:
            cols["red"], cols["green"], cols["blue"] = pal[:, 0], pal[:, 1], pal[:, 2]
        written.append(_write(colored_path(path), cols, prompts))
    return written
