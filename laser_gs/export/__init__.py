"""Labeled PLY export of any backend's :class:`~laser_gs.export.records.PointSet`: 3DGS-format Gaussians or
point clouds, written atomically with plyfile."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from laser_gs.export.labels import point_labels
from laser_gs.export.ply import GAUSSIAN_PROPERTIES, read_ply_classes, write_ply
from laser_gs.export.records import GaussianAttributes, PointSet


def export_points(points: PointSet, path: Path, prompts: list[str] | None = None, text: Tensor | None = None,
                  color_by_label: bool = False, keep: Tensor | None = None, offsets: Tensor | None = None
                  ) -> list[Path]:
    """Label ``points`` with ``text`` ``[C, D]`` (the ensemble head, :func:`point_labels`) and write them as PLY.

    ``keep`` ``[P]`` bool writes only those points (a query's selection). Without ``text`` or without
    semantic outputs the PLY has no label columns. ``offsets`` ``[C]``: the run's class calibration for ``text``.
    """
    if keep is not None:
        points = points.select(keep.cpu())
    labels = scores = None
    if text is not None and points.feature is not None:
        idx, score = point_labels(points.feature, points.label, text.cpu(), offsets=offsets)
        labels, scores = idx.numpy(), score.numpy()
    return write_ply(Path(path), points, labels, scores, prompts if labels is not None else None, color_by_label)


__all__ = ["GAUSSIAN_PROPERTIES", "GaussianAttributes", "PointSet", "export_points", "point_labels",
           "read_ply_classes", "write_ply"]
