"""Camera paths for videos: a spiral in front of forward-facing captures, an orbit around 360-degree ones.

The path is built from the scene's own cameras, so it stays where the model
was trained: the focus is the point closest (least squares) to all optical
axes, the spiral's radii come from how far the cameras spread around their
mean, and an orbit keeps the cameras' mean distance and height.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from laser_gs.choices import PATHS  # noqa: F401 (re-exported)
from laser_gs.data.cameras import Cameras, look_at


def focus_point(cameras: Cameras) -> Tensor:
    """``[3]`` point nearest to every camera's optical axis (least squares).

    For nearly parallel axes (forward-facing captures) the system is ill-conditioned;
    then the point ``mean depth`` in front of the mean camera is returned instead
    (``depth`` = mean distance from the centres to the least-squares point, clamped).
    """
    c, d = cameras.centers.double(), cameras.forward.double()
    eye = torch.eye(3, dtype=torch.float64)
    proj = eye[None] - d[:, :, None] * d[:, None, :]  # [N, 3, 3] projectors orthogonal to the axes
    A, b = proj.sum(0), (proj @ c[:, :, None]).sum(0)[:, 0]
    if torch.linalg.cond(A) < 1e4:
        return torch.linalg.solve(A, b).float()
    mean_c, mean_d = c.mean(0), torch.nn.functional.normalize(d.mean(0), dim=0)
    spread = float((c - mean_c).norm(dim=-1).max()) or 1.0
    return (mean_c + mean_d * 10 * spread).float()


def _mean_down(cameras: Cameras) -> Tensor:
    """``[3]`` mean image-down (+y) direction of the cameras, unit length."""
    return torch.nn.functional.normalize(cameras.c2w[:, :3, 1].mean(0), dim=0)


def spiral_path(cameras: Cameras, frames: int, turns: float = 2.0, forward_facing: bool = True) -> Cameras:
    """``frames`` cameras on a spiral (forward-facing) or a circle (360 degrees) around the scene.

    Intrinsics and image size are those of the first camera.
    """
    if frames < 1:
        raise ValueError("frames must be at least 1")
    target = focus_point(cameras)
    centres = cameras.centers
    mean = centres.mean(0)
    down = _mean_down(cameras)
    t = torch.linspace(0.0, 1.0, frames + 1)[:-1]
    if forward_facing:
        axis = torch.nn.functional.normalize(target - mean, dim=0)
        right = torch.nn.functional.normalize(torch.linalg.cross(down, axis), dim=0)
        up = torch.linalg.cross(axis, right)
        off = centres - mean
        rx = float(torch.quantile((off @ right).abs(), 0.9)) or 1e-3
        ry = float(torch.quantile((off @ up).abs(), 0.9)) or 1e-3
        rz = float(torch.quantile((off @ axis).abs(), 0.9))
        ang = 2 * math.pi * turns * t
        eyes = (mean + torch.cos(ang)[:, None] * rx * right + torch.sin(ang)[:, None] * ry * up
                + (0.5 * (1 - torch.cos(2 * math.pi * t)))[:, None] * rz * axis)  # in and back out once
    else:
        up = -down
        rel = centres - target
        height = float((rel @ up).mean())
        flat = rel - (rel @ up)[:, None] * up
        radius = float(flat.norm(dim=-1).mean())
        e1 = torch.nn.functional.normalize(flat[0], dim=0)
        e2 = torch.linalg.cross(up, e1)
        ang = 2 * math.pi * t
        eyes = target + height * up + radius * (torch.cos(ang)[:, None] * e1 + torch.sin(ang)[:, None] * e2)
    c2w = torch.stack([look_at(e, target, down) for e in eyes])
    return Cameras(c2w, cameras.K[:1].expand(frames, 3, 3).clone(), cameras.width, cameras.height)
