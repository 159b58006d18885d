"""TensoRF backend settings and the two presets.

``default`` follows the paper and the authors' code (sections 2 and 6 of the
reference notes): 128^3 -> 640^3 voxels, VM components [16,4,4] / [48,12,12],
4096-ray batches, 30k reconstruction + 15k semantic iterations. ``fast`` keeps
every stage and schedule but shrinks grids, samples and iteration counts so a
scene trains in minutes on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from laser_gs.training.semantic import SemanticConfig


@dataclass
class TensoRFConfig:
    """Stage 1 (reconstruction) settings; ``semantic`` holds stage 2."""

    iters: int = 30000
    batch_rays: int = 4096
    voxels_init: int = 128 ** 3
    voxels_final: int = 640 ** 3
    upsample_at: tuple[int, ...] = (2000, 3000, 4000, 5500)
    occupancy_at: tuple[int, ...] = (2000, 4000)
    density_comps: tuple[int, int, int] = (16, 4, 4)
    app_comps: tuple[int, int, int] = (48, 12, 12)
    semantic_comps: tuple[int, int, int] = (16, 8, 8)  # stage 2 semantic VM (ours, see docs/method.md)
    app_dim: int = 27
    mlp_width: int = 128
    step_ratio: float = 0.5
    ndc_samples: int = 128  # samples per ray in NDC (forward-facing) scenes
    max_samples: int = 1024  # cap for box scenes
    lr_grid: float = 0.02
    lr_net: float = 1e-3
    lr_decay: float = 0.1  # total decay factor over a stage
    tv_density: float = 1.0  # forward-facing scenes (times 1e-2 inside, as TensoRF)
    tv_app: float = 1.0
    l1_density: float = 8e-5  # box scenes
    distance_scale: float = 25.0
    weight_threshold: float = 1e-4
    occupancy_threshold: float = 1e-4
    lr_app_joint: float = 5e-3  # stage 2 after joint start
    lr_net_joint: float = 5e-5
    checkpoint_every: int = 500
    eval_every: int = 0  # PSNR on a held-out view in the progress bar (0 = off)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["semantic"] = self.semantic.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TensoRFConfig":
        known = cls.__dataclass_fields__
        kw = {k: v for k, v in data.items() if k in known and k != "semantic"}
        for key in ("upsample_at", "occupancy_at", "density_comps", "app_comps", "semantic_comps"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw, semantic=SemanticConfig.from_dict(data.get("semantic", {})))


def preset(name: str) -> TensoRFConfig:
    """``default`` (paper, GPU-sized) or ``fast`` (CPU-sized, same stages)."""
    if name == "default":
        return TensoRFConfig()
    if name == "fast":
        return TensoRFConfig(
            iters=3000, batch_rays=2048, voxels_init=48 ** 3, voxels_final=144 ** 3,
            upsample_at=(400, 800, 1200, 1600), occupancy_at=(600, 1400), density_comps=(8, 4, 4),
            app_comps=(24, 8, 8), mlp_width=64, step_ratio=1.0, ndc_samples=64, max_samples=256,
            checkpoint_every=250, eval_every=500,
            semantic=SemanticConfig(iters=1500, joint_start=500, sct_start=800, batch_rays=1024),
        )
    raise ValueError(f"unknown preset {name!r}; choose 'default' or 'fast'")
