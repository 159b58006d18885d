"""Multi-scale patch-pyramid CLIP features: the preprocessing LERF and 3D-OVS use, as a baseline.

LERF precomputes, per training image, CLIP embeddings of square crops at
several scales (7 scales from 5 % to 50 % of the image, 50 % overlap between
neighbouring crops) and interpolates them at training time; 3D-OVS extracts
multi-scale patch features in the same spirit. Every crop is resized to the
vision tower's input size and encoded separately, so the cost grows with the
number of crops, while dense extraction (:meth:`DenseCLIP.encode_image`) runs
the tower once per view. Here crop sizes are fractions of the image's shorter
side (our reading of "fraction of the image"); crops are cut and resized in one
batched ``roi_align`` call per scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from laser_gs.features.dense_clip import DenseCLIP


@dataclass(frozen=True)
class PyramidSpec:
    """Crop scales (fractions of the shorter image side) and the overlap of neighbouring crops."""

    min_scale: float = 0.05
    max_scale: float = 0.5
    num_scales: int = 7
    overlap: float = 0.5

    def scales(self) -> list[float]:
        return torch.linspace(self.min_scale, self.max_scale, self.num_scales).tolist()


def crop_boxes(height: int, width: int, size: float, overlap: float) -> tuple[Tensor, int, int]:
    """``[K, 4]`` (x0, y0, x1, y1) crops of side ``size`` px covering the image at the given overlap.

    Returns the boxes and the grid shape ``(ny, nx)``; the last row / column is flush with the border.
    """
    stride = max(1.0, size * (1 - overlap))

    def starts(extent: int) -> Tensor:
        n = max(1, int(torch.ceil(torch.tensor((extent - size) / stride)).item()) + 1)
        return torch.linspace(0.0, max(0.0, extent - size), n)

    ys, xs = starts(height), starts(width)
    y0, x0 = torch.meshgrid(ys, xs, indexing="ij")
    boxes = torch.stack([x0, y0, x0 + size, y0 + size], dim=-1).reshape(-1, 4)
    return boxes, len(ys), len(xs)


@torch.no_grad()
def encode_pyramid(clip: DenseCLIP, image: Tensor, spec: PyramidSpec = PyramidSpec(),
                   batch: int = 64) -> list[Tensor]:
    """Per scale, an ``[ny, nx, D]`` grid of crop embeddings of one ``[H, W, 3]`` image in [0, 1]."""
    from torchvision.ops import roi_align

    H, W = image.shape[:2]
    x = image.permute(2, 0, 1)[None].float()
    n = clip.native_size
    grids = []
    for scale in spec.scales():
        size = max(8.0, scale * min(H, W))
        boxes, ny, nx = crop_boxes(H, W, size, spec.overlap)
        rois = torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1)
        crops = roi_align(x, rois, output_size=(n, n), spatial_scale=1.0, sampling_ratio=2, aligned=True)
        crops = (crops - clip.mean) / clip.std
        emb = torch.cat([clip.model.encode_image(crops[i:i + batch]).float() for i in range(0, len(crops), batch)])
        grids.append(F.normalize(emb, dim=-1).reshape(ny, nx, -1))
    return grids
