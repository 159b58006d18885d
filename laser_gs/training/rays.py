"""Random ray batches over the training views, reproducible from the step number.

Every batch is drawn from a generator seeded with ``(seed, step)``, so a run
resumed at step ``k`` sees exactly the batches an uninterrupted run sees,
without saving RNG state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from laser_gs.data.scene import Scene


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one step (``stream`` separates independent draws of the same step)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)


@dataclass
class RayBatch:
    """``R`` rays: source view, pixel coordinates (pixel centres at +0.5), colour, and world rays."""

    view: Tensor  # [R] int64 scene view index
    u: Tensor  # [R] x pixel coordinate
    v: Tensor  # [R] y pixel coordinate
    rgb: Tensor  # [R, 3]
    origins: Tensor  # [R, 3]
    directions: Tensor  # [R, 3] unit


class RayBatcher:
    """Uniformly random pixels of the given views.

    Args:
        scene: the scene (its images stay on the CPU; batches move to ``device``).
        views: view indices to draw from (usually the train split).
        device: where batches go.
    """

    def __init__(self, scene: Scene, views: list[int], device: torch.device | str = "cpu"):
        if not views:
            raise ValueError("no training views")
        self.scene = scene
        self.views = torch.as_tensor(views, dtype=torch.int64)
        self.cameras = scene.cameras.to(device)
        self.device = torch.device(device)

    def sample(self, n: int, generator: torch.Generator) -> RayBatch:
        H, W = self.scene.height, self.scene.width
        flat = torch.randint(0, len(self.views) * H * W, (n,), generator=generator)
        view = self.views[flat // (H * W)]
        pix = flat % (H * W)
        y, x = pix // W, pix % W
        rgb = self.scene.images[view, y, x]
        u = x.float() + 0.5
        v = y.float() + 0.5
        dev = self.device
        view, u, v = view.to(dev), u.to(dev), v.to(dev)
        origins, directions = self.cameras.rays_at(view, u, v)
        return RayBatch(view, u, v, rgb.to(dev), origins, directions)
