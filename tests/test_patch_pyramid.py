"""The patch-pyramid baseline: crop layout and encoded grids."""

from __future__ import annotations

import torch

from laser_gs.features.dense_clip import tiny_clip
from _patch_pyramid import PyramidSpec, crop_boxes, encode_pyramid


def test_crops_cover_the_image_with_the_requested_overlap():
    boxes, ny, nx = crop_boxes(72, 96, 24.0, 0.5)
    assert boxes.shape == (ny * nx, 4)
    assert float(boxes[:, 0].min()) == 0 and float(boxes[:, 2].max()) == 96
    assert float(boxes[:, 1].min()) == 0 and float(boxes[:, 3].max()) == 72
    step = float(boxes[1, 0] - boxes[0, 0])
    assert step <= 12.0 + 1e-4  # at least 50 % overlap between neighbours


def test_pyramid_grids_are_unit_embeddings_per_scale():
    clip = tiny_clip("vanilla")
    spec = PyramidSpec(num_scales=3)
    grids = encode_pyramid(clip, torch.rand(48, 64, 3), spec)
    assert len(grids) == 3
    assert grids[0].shape[0] * grids[0].shape[1] > grids[-1].shape[0] * grids[-1].shape[1]
    for g in grids:
        assert g.shape[-1] == clip.dim and torch.allclose(g.norm(dim=-1), torch.ones(g.shape[:2]), atol=1e-4)
