"""Labeled PLY export: 3DGS-format Gaussians and point clouds, written atomically with plyfile."""

from laser_gs.export.labels import point_labels
from laser_gs.export.ply import export_gaussians, export_points, read_ply_classes

__all__ = ["export_gaussians", "export_points", "point_labels", "read_ply_classes"]
