"""Vector-matrix (VM) decomposed volumes (TensoRF), shared by every backend's spatial fields.

A VM volume with components ``(c0, c1, c2)`` stores, per axis pair, a plane
``[c_i, R_a, R_b]`` and a line ``[c_i, R_c]`` along the remaining axis; a point's
value is the concatenation of the ``c0 + c1 + c2`` products plane(x_a, x_b) *
line(x_c). Points are given normalised to ``[-1, 1]^3`` inside the field's box.
``tensorf`` builds its density, appearance, semantic and label volumes from it;
``gsplat`` its Gaussians' semantic and label field (the low-rank grid is what makes
nearby points share semantics, docs/method.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# plane axis pairs and the matching line axis (TensoRF's matMode / vecMode)
MAT_MODE = ((0, 1), (0, 2), (1, 2))
VEC_MODE = (2, 1, 0)


def resolution_for(aabb: Tensor, voxels: int) -> list[int]:
    """Per-axis grid resolution with about ``voxels`` cubic voxels in the box ``[2, 3]``."""
    size = (aabb[1] - aabb[0]).tolist()
    voxel = (math.prod(size) / voxels) ** (1 / 3)
    return [max(2, int(round(s / voxel))) for s in size]


class VMVolume(nn.Module):
    """One VM-decomposed volume.

    Args:
        comps: components per axis pair.
        resolution: ``[Rx, Ry, Rz]``.
        scale: std of the random initialisation.
    """

    def __init__(self, comps: tuple[int, int, int], resolution: list[int], scale: float = 0.1):
        super().__init__()
        self.comps = tuple(comps)
        self.planes = nn.ParameterList()
        self.lines = nn.ParameterList()
        for i, c in enumerate(self.comps):
            a, b = MAT_MODE[i]
            self.planes.append(nn.Parameter(scale * torch.randn(1, c, resolution[b], resolution[a])))
            self.lines.append(nn.Parameter(scale * torch.randn(1, c, resolution[VEC_MODE[i]], 1)))

    @property
    def out_dim(self) -> int:
        return sum(self.comps)

    def forward(self, xyz: Tensor) -> Tensor:
        """``[P, 3]`` normalised points -> ``[P, c0 + c1 + c2]`` component products."""
        out = []
        for i in range(3):
            a, b = MAT_MODE[i]
            pc = xyz[:, (a, b)].view(1, -1, 1, 2)
            lc = torch.stack([torch.zeros_like(xyz[:, 0]), xyz[:, VEC_MODE[i]]], dim=-1).view(1, -1, 1, 2)
            plane = F.grid_sample(self.planes[i], pc, mode="bilinear", align_corners=True)
            line = F.grid_sample(self.lines[i], lc, mode="bilinear", align_corners=True)
            out.append((plane * line)[0, :, :, 0])
        return torch.cat(out).T

    @torch.no_grad()
    def upsample(self, resolution: list[int]) -> None:
        """Resample planes and lines to a new resolution (new Parameters: rebuild optimizers)."""
        for i in range(3):
            a, b = MAT_MODE[i]
            self.planes[i] = nn.Parameter(F.interpolate(self.planes[i].data, size=(resolution[b], resolution[a]),
                                                        mode="bilinear", align_corners=True))
            self.lines[i] = nn.Parameter(F.interpolate(self.lines[i].data, size=(resolution[VEC_MODE[i]], 1),
                                                       mode="bilinear", align_corners=True))

    def tv_loss(self) -> Tensor:
        """Total variation of the planes and lines (mean squared neighbour difference)."""
        loss = self.planes[0].new_zeros(())
        for p, line in zip(self.planes, self.lines):
            loss = loss + (p[..., 1:, :] - p[..., :-1, :]).pow(2).mean() + (p[..., 1:] - p[..., :-1]).pow(2).mean()
            loss = loss + 1e-3 * (line[..., 1:, :] - line[..., :-1, :]).pow(2).mean()
        return loss

    def l1_loss(self) -> Tensor:
        return sum(p.abs().mean() + line.abs().mean() for p, line in zip(self.planes, self.lines))
