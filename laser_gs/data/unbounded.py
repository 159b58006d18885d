"""Unbounded 360-degree scenes: when space needs contracting, and the contraction itself.

A capture that walks around a group of objects sees a floor running to the horizon and a sky; the box
holding every frustum up to the far bound is then ten or more times wider than the camera rig, and a
voxel grid over it spends almost all of its cells on distant floor (objects get a voxel or two). The
mip-NeRF 360 contraction keeps a ball around the rig as it is and maps everything beyond into a shell:

    y = x                          if |x| <= 1
    y = (2 - 1 / |x|) x / |x|      otherwise          (x in units of the ball's radius, |y| < 2)

so distance beyond the ball is spent in proportion to disparity, which is how much of an image it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from laser_gs.data.cameras import Cameras

#: contract when the scene box reaches this many times farther from the rig's centre than the cameras do
UNBOUNDED_RATIO = 3.0


@dataclass(frozen=True)
class Contraction:
    """The ball ``|x - center| <= radius`` kept linear; the rest of space squeezed into ``radius < |x| < 2 radius``."""

    center: tuple[float, float, float]
    radius: float

    def contract(self, x: Tensor) -> Tensor:
        """World points ``[..., 3]`` -> contracted points ``[..., 3]`` (units of ``radius``, norm < 2)."""
        assert x.shape[-1] == 3, f"points must be [..., 3], got {tuple(x.shape)}"
        y = (x - x.new_tensor(self.center)) / self.radius
        n = y.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        return torch.where(n <= 1, y, (2 - 1 / n) * y / n)

    def uncontract(self, y: Tensor) -> Tensor:
        """Inverse of :meth:`contract`: ``[..., 3]`` with norm < 2 -> world ``[..., 3]``."""
        assert y.shape[-1] == 3, f"points must be [..., 3], got {tuple(y.shape)}"
        n = y.norm(dim=-1, keepdim=True).clamp(1e-9, 2 - 1e-6)
        x = torch.where(n <= 1, y, y / n / (2 - n))
        return x * self.radius + x.new_tensor(self.center)

    def world_per_contracted(self, y: Tensor) -> Tensor:
        """``[..., 3]`` contracted points -> ``[...]`` world length of a unit contracted length there (radial, the
        larger of the two stretches): ``radius`` inside the ball, ``radius / (2 - |y|)^2`` outside."""
        n = y.norm(dim=-1).clamp(max=2 - 1e-3)
        return self.radius * torch.where(n <= 1, torch.ones_like(n), 1 / (2 - n) ** 2)

    def to_dict(self) -> dict:
        return {"center": list(self.center), "radius": self.radius}

    @classmethod
    def from_dict(cls, d: dict) -> "Contraction":
        return cls(tuple(float(c) for c in d["center"]), float(d["radius"]))


def rig_center(cameras: Cameras) -> Tensor:
    """``[3]`` the point nearest to every camera's optical axis (least squares): what an orbit looks at.

    Falls back to the mean camera centre when the axes are (near) parallel.
    """
    c = cameras.centers.double()
    d = cameras.forward.double()
    d = d / d.norm(dim=-1, keepdim=True)
    A = torch.eye(3, dtype=c.dtype) - d[:, :, None] * d[:, None, :]  # projectors orthogonal to each axis
    M, b = A.sum(0), (A @ c[:, :, None]).sum(0)[:, 0]
    if torch.linalg.eigvalsh(M).min() < 1e-3 * len(c):
        return c.mean(0).float()
    return torch.linalg.solve(M, b).float()


def scene_contraction(cameras: Cameras, aabb: Tensor, forward_facing: bool,
                      radius_scale: float = 1.0) -> Contraction | None:
    """The contraction a scene needs, or None (forward-facing: NDC; bounded: its box).

    Unbounded means the scene box reaches more than :data:`UNBOUNDED_RATIO` times farther from the rig's centre
    than the farthest camera. The kept ball is centred on what the cameras look at, with the farthest camera's
    distance (times ``radius_scale``) as radius, so every camera sits inside it as mip-NeRF 360 assumes.
    """
    if forward_facing:
        return None
    center = rig_center(cameras)
    cam_dist = float((cameras.centers - center).norm(dim=-1).max())
    corners = torch.cartesian_prod(*[aabb[:, k] for k in range(3)])
    box_dist = float((corners - center).norm(dim=-1).max())
    if cam_dist <= 0 or box_dist <= UNBOUNDED_RATIO * cam_dist:
        return None
    return Contraction(tuple(float(v) for v in center), cam_dist * radius_scale)
