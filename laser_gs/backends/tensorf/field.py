"""The TensoRF field built from VM volumes (paper section 4.1) plus the shared semantic field."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from laser_gs.semantics.field import SemanticField
from laser_gs.semantics.volume import VMVolume, resolution_for

__all__ = ["TensoRFField", "VMVolume", "resolution_for"]


class TensoRFField(nn.Module):
    """Density, appearance and (stage 2) semantic branches.

    * density: VM -> sum of components -> ReLU (forward-facing) or softplus(x - 10) (box scenes);
    * appearance: VM -> ``basis`` (linear, ``app_dim``) -> RGB MLP on [feature, view dir];
    * semantics: the shared :class:`SemanticField` on the appearance feature and position (the code's
      feature head reads the appearance feature only; the small semantic VM lets objects of the same
      colour get different features without retraining appearance, see docs/method.md), with the label
      volume at the density's component counts.
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
        self.semantic = SemanticField(resolution, app_dim, point_dim, code_dim, semantic_comps, density_comps,
                                      mlp_width)
        self.resolution = list(resolution)

    DENSITY_SHIFT = 10.0  # softplus(raw - 10): an empty (zero) grid is nearly transparent, not opaque

    def sigma(self, xyz: Tensor) -> Tensor:
        raw = self.density(xyz).sum(dim=-1)
        return F.relu(raw) if self.relu_density else F.softplus(raw - self.DENSITY_SHIFT)

    @property
    def density_floor(self) -> float:
        """Density of an untrained (zero) cell: 0 with ReLU, ``softplus(-10)`` ~4.5e-5 otherwise."""
        return 0.0 if self.relu_density else float(F.softplus(torch.tensor(-self.DENSITY_SHIFT)))

    def app_feature(self, xyz: Tensor) -> Tensor:
        return self.basis(self.app(xyz))

    def rgb(self, app_feature: Tensor, viewdir: Tensor) -> Tensor:
        return torch.sigmoid(self.rgb_mlp(torch.cat([app_feature, viewdir], dim=-1)))

    def upsample(self, resolution: list[int]) -> None:
        for vol in (self.density, self.app):
            vol.upsample(resolution)
        self.semantic.upsample(resolution)
        self.resolution = list(resolution)

    def grid_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"density": list(self.density.parameters()), "app": list(self.app.parameters())}
