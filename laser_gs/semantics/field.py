"""The semantic field every backend evaluates at its points (samples along rays, Gaussian centres, voxels).

A point's attention input is a SiLU MLP of its appearance feature and of a
low-rank VM volume at its position; its label code a bias-free linear map of a
second VM volume. Nearby and similar-looking points share parameters, so
evidence from every view reaches the whole object (docs/method.md measures why
the gsplat backend needs this: free per-Gaussian features scored 80.3 mIoU
against 92.6 with the field). Positions are given normalised to ``[-1, 1]^3`` in
the backend's box.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from laser_gs.semantics.volume import VMVolume


class SemanticField(nn.Module):
    """``[P, 3]`` positions and ``[P, app_dim]`` appearance -> ``[P, point_dim]`` attention inputs and
    ``[P, code_dim]`` label codes.

    Args:
        resolution: ``[Rx, Ry, Rz]`` grid size of both volumes.
        app_dim: width of the appearance feature the backend supplies.
        point_dim: attention input width.
        code_dim: label code width.
        semantic_comps: VM components of the semantic volume.
        label_comps: VM components of the label volume.
        width: hidden width of the MLP.
    """

    def __init__(self, resolution: list[int], app_dim: int, point_dim: int, code_dim: int,
                 semantic_comps: tuple[int, int, int] = (16, 8, 8), label_comps: tuple[int, int, int] = (8, 4, 4),
                 width: int = 64):
        super().__init__()
        self.config = {"app_dim": app_dim, "point_dim": point_dim, "code_dim": code_dim,
                       "semantic_comps": list(semantic_comps), "label_comps": list(label_comps), "width": width}
        self.resolution = [int(r) for r in resolution]
        self.semantic_volume = VMVolume(semantic_comps, self.resolution)
        self.mlp = nn.Sequential(nn.Linear(app_dim + self.semantic_volume.out_dim, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, point_dim))
        self.label_volume = VMVolume(label_comps, self.resolution)
        self.label_basis = nn.Linear(self.label_volume.out_dim, code_dim, bias=False)

    def point_feature(self, appearance: Tensor, xyz: Tensor) -> Tensor:
        """``[P, app_dim]``, ``[P, 3]`` -> ``[P, point_dim]`` input of the transient query attention."""
        return self.mlp(torch.cat([appearance, self.semantic_volume(xyz)], dim=-1))

    def label_code(self, xyz: Tensor) -> Tensor:
        """``[P, 3]`` -> ``[P, code_dim]`` label code."""
        return self.label_basis(self.label_volume(xyz))

    def forward(self, xyz: Tensor, appearance: Tensor) -> tuple[Tensor, Tensor]:
        """Both outputs at once: ``[P, point_dim]`` and ``[P, code_dim]``."""
        assert xyz.ndim == 2 and xyz.shape[1] == 3 and appearance.shape[0] == xyz.shape[0], \
            (xyz.shape, appearance.shape)
        return self.point_feature(appearance, xyz), self.label_code(xyz)

    def upsample(self, resolution: list[int]) -> None:
        """Resample both volumes (new Parameters: optimizers must be rebuilt)."""
        for vol in (self.semantic_volume, self.label_volume):
            vol.upsample(resolution)
        self.resolution = list(resolution)

    def grid_parameters(self) -> list[nn.Parameter]:
        return list(self.semantic_volume.parameters()) + list(self.label_volume.parameters())

    def net_parameters(self) -> list[nn.Parameter]:
        return list(self.mlp.parameters()) + list(self.label_basis.parameters())

    def meta(self) -> dict[str, Any]:
        """What :meth:`from_meta` needs to rebuild the module before loading its state dict."""
        return {"resolution": list(self.resolution), **self.config}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "SemanticField":
        m = dict(meta)
        return cls(m.pop("resolution"), m.pop("app_dim"), m.pop("point_dim"), m.pop("code_dim"),
                   tuple(m.pop("semantic_comps")), tuple(m.pop("label_comps")), int(m.pop("width")))

