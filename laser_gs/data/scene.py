"""The one in-memory scene every command and backend works from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from laser_gs.data.cameras import Cameras


@dataclass
class Scene:
    """Posed images of one scene, with optional segmentation annotations.

    Attributes:
        root: the scene folder.
        format: ``"llff"``, ``"3dovs"`` (LLFF plus ``segmentations/``) or ``"blender"``.
        images: ``[N, H, W, 3]`` float32 RGB in [0, 1].
        image_names: N file stems, in index order (sorted file names for LLFF).
        image_paths: N source files.
        cameras: the N cameras (see :mod:`laser_gs.data.cameras` for the convention).
        splits: index lists per split name (``"train"``, ``"test"``, ``"val"``).
        near_far: ``[N, 2]`` near and far scene depth per view, in scene units.
        forward_facing: True for LLFF-style captures where NDC rays apply.
        aabb: ``[2, 3]`` min and max corner of a box holding the scene content.
        world_from_file: ``[4, 4]`` similarity mapping the file's world
            coordinates to this scene's (LLFF recentring and rescaling).
        classes: class prompts in file order (empty without annotations).
        gt_masks: annotated view index -> ``[C, H, W]`` bool masks, one per class.
        alphas: ``[N, H, W]`` float32 object opacity (Blender) or None.
        feature_dir: the precomputed feature folder if the scene has one.
        background: ``"white"`` or ``"black"``: what renders show where rays end empty (non-forward-facing
            scenes; Blender images are composited on it).
        points: ``[P, 3]`` sparse 3D points of the scene (structure from motion), or None.
        point_colors: ``[P, 3]`` their colours in [0, 1], or None.
    """

    root: Path
    format: str
    images: Tensor
    image_names: list[str]
    image_paths: list[Path]
    cameras: Cameras
    splits: dict[str, list[int]]
    near_far: Tensor
    forward_facing: bool
    aabb: Tensor
    world_from_file: Tensor = field(default_factory=lambda: torch.eye(4))
    classes: list[str] = field(default_factory=list)
    gt_masks: dict[int, Tensor] = field(default_factory=dict)
    alphas: Tensor | None = None
    feature_dir: Path | None = None
    background: str = "white"
    points: Tensor | None = None
    point_colors: Tensor | None = None

    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def width(self) -> int:
        return self.cameras.width

    @property
    def height(self) -> int:
        return self.cameras.height

    @property
    def train_views(self) -> list[int]:
        """The views training reads: the train split, or every view when the scene has no splits."""
        return list(self.splits.get("train") or range(self.num_views))

    @property
    def eval_view(self) -> int:
        """The view training curves are measured on: the first test (or val) view, else the first train view."""
        return (self.splits.get("test") or self.splits.get("val") or self.train_views)[0]

    @property
    def annotated_views(self) -> list[int]:
        """Indices of the views with GT masks, ascending."""
        return sorted(self.gt_masks)

    def gt_label_map(self, view: int) -> Tensor:
        """``[H, W]`` int64 class index per pixel of an annotated view.

        -1 marks pixels with no class or with several (the 3D-OVS accuracy
        counts those as wrong whatever is predicted).
        """
        masks = self.gt_masks[view]
        count = masks.sum(dim=0)
        labels = masks.to(torch.int64).argmax(dim=0)
        labels[count != 1] = -1
        return labels

    def _contraction_summary(self) -> dict | None:
        """The contraction an unbounded 360-degree scene gets (tensorf rays, gsplat background), else None."""
        from laser_gs.data.unbounded import scene_contraction

        c = scene_contraction(self.cameras, self.aabb, self.forward_facing)
        return c.to_dict() if c is not None else None

    def summary(self) -> dict:
        """JSON-ready description used by ``laser inspect``."""
        K = self.cameras.K
        fx, fy = K[:, 0, 0], K[:, 1, 1]
        centers = self.cameras.centers
        return {
            "path": str(self.root),
            "format": self.format,
            "views": self.num_views,
            "splits": {name: len(idx) for name, idx in self.splits.items()},
            "width": self.width,
            "height": self.height,
            "resolution": f"{self.width}x{self.height}",
            "forward_facing": self.forward_facing,
            "intrinsics": {
                "fx_mean": float(fx.mean()),
                "fy_mean": float(fy.mean()),
                "fx_range": [float(fx.min()), float(fx.max())],
                "cx_mean": float(K[:, 0, 2].mean()),
                "cy_mean": float(K[:, 1, 2].mean()),
                "fov_x_deg": float(torch.rad2deg(2 * torch.atan(self.width / (2 * fx.mean())))),
            },
            "near_far": [float(self.near_far[:, 0].min()), float(self.near_far[:, 1].max())],
            "aabb": self.aabb.tolist(),
            "camera_extent": float((centers - centers.mean(0)).norm(dim=-1).max()),
            "unbounded": self._contraction_summary(),
            "classes": list(self.classes),
            "annotated_views": self.annotated_views,
            "annotated_names": [self.image_names[i] for i in self.annotated_views],
            "feature_dir": str(self.feature_dir) if self.feature_dir else None,
        }
