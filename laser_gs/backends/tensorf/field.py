"""TensoRF vector-matrix (VM) volumes and the field built from them (paper section 4.1).

A VM volume with components ``(c0, c1, c2)`` stores, per axis pair, a plane
``[c_i, R_a, R_b]`` and a line ``[c_i, R_c]`` along the remaining axis; a point's
value is the concatenation of the ``c0 + c1 + c2`` products plane(x_a, x_b) *
line(x_c). Points are given normalised to ``[-1, 1]^3`` inside the scene box.
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

    def resize_to(self, resolution: list[int]) -> None:
        """Match a checkpoint's shapes before ``load_state_dict`` (values are overwritten)."""
        self.upsample(resolution)

    def tv_loss(self) -> Tensor:
        """Total variation of the planes and lines (mean squared neighbour difference)."""
        loss = self.planes[0].new_zeros(())
        for p, l in zip(self.planes, self.lines):
            loss = loss + (p[..., 1:, :] - p[..., :-1, :]).pow(2).mean() + (p[..., 1:] - p[..., :-1]).pow(2).mean()
            loss = loss + 1e-3 * (l[..., 1:, :] - l[..., :-1, :]).pow(2).mean()
        return loss

    def l1_loss(self) -> Tensor:
        return sum(p.abs().mean() + l.abs().mean() for p, l in zip(self.planes, self.lines))


class TensoRFField(nn.Module):
    """Density, appearance and (stage 2) semantic branches.

    * density: VM -> sum of components -> ReLU (forward-facing) or softplus(x - 10) (box scenes);
    * appearance: VM -> ``basis`` (linear, ``app_dim``) -> RGB MLP on [feature, view dir];
    * semantic feature: [appearance feature, semantic VM] -> SiLU MLP -> ``point_dim`` (the code's
      feature head reads the appearance feature only; the small semantic VM lets objects of the
      same colour get different features without retraining appearance, see docs/method.md);
    * label: a VM with the density's component counts -> linear (no bias) -> label code.
    """

    def __init__(self, resolution: list[int], density_comps: tuple[int, int, int], app_comps: tuple[int, int, int],
                 app_dim: int, mlp_width: int, point_dim: int, code_dim: int, relu_density: bool,
                 semantic_comps: tuple[int, int, int] = (16, 8, 8)):
        super().__init__()
        self.relu_density = relu_density
        self.density = VMVolume(density_comps, resolution)
        self.app = VMVolume(app_comps, resolution)
        self.basis = nn.Linear(self.app.out_dim, app_dim, bias=False)
        self.rgb_mlp = nn.Sequential(nn.Linear(app_dim + 3, mlp_width), nn.ReLU(inplace=True),
                                     nn.Linear(mlp_width, mlp_width), nn.ReLU(inplace=True), nn.Linear(mlp_width, 3))
        nn.init.zeros_(self.rgb_mlp[-1].bias)
        self.semantic_volume = VMVolume(semantic_comps, resolution)
        self.feature_mlp = nn.Sequential(nn.Linear(app_dim + self.semantic_volume.out_dim, mlp_width), nn.SiLU(),
                                         nn.Linear(mlp_width, mlp_width), nn.SiLU(), nn.Linear(mlp_width, point_dim))
        self.label_volume = VMVolume(density_comps, resolution)
        self.label_basis = nn.Linear(self.label_volume.out_dim, code_dim, bias=False)
        self.resolution = list(resolution)

    def sigma(self, xyz: Tensor) -> Tensor:
        raw = self.density(xyz).sum(dim=-1)
        return F.relu(raw) if self.relu_density else F.softplus(raw - 10.0)

    def app_feature(self, xyz: Tensor) -> Tensor:
        return self.basis(self.app(xyz))

    def rgb(self, app_feature: Tensor, viewdir: Tensor) -> Tensor:
        return torch.sigmoid(self.rgb_mlp(torch.cat([app_feature, viewdir], dim=-1)))

    def point_feature(self, app_feature: Tensor, xyz: Tensor) -> Tensor:
        """``[P, point_dim]`` input of the transient attention at points ``xyz`` with appearance ``app_feature``."""
        return self.feature_mlp(torch.cat([app_feature, self.semantic_volume(xyz)], dim=-1))

    def label_code(self, xyz: Tensor) -> Tensor:
        return self.label_basis(self.label_volume(xyz))

    def upsample(self, resolution: list[int]) -> None:
        for vol in (self.density, self.app, self.label_volume, self.semantic_volume):
            vol.upsample(resolution)
        self.resolution = list(resolution)

    def grid_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"density": list(self.density.parameters()), "app": list(self.app.parameters()),
                "label": list(self.label_volume.parameters()) + list(self.semantic_volume.parameters())}
