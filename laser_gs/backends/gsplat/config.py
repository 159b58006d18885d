"""gsplat backend settings and presets (stage 2 shares :class:`SemanticConfig` with tensorf)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from laser_gs.training.semantic import SemanticConfig


@dataclass
class GsplatConfig:
    """Stage 1 (photometric fit with densification) settings; ``semantic`` holds stage 2."""

    iters: int = 30000
    init_points: int = 100_000
    max_gaussians: int = 0  # 0 = no cap; densification beyond it prunes the least opaque
    init_max_pixels: float = 1.5  # cap on the initial scale, in pixels at the nearest camera
    sh_degree: int = 3
    sh_degree_every: int = 1000  # one more SH band every this many steps (3DGS)
    ssim_lambda: float = 0.2
    lr_means: float = 1.6e-4  # times the scene scale
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    lr_feat: float = 2.5e-3  # per-Gaussian semantic feature and label code (stage 2, semantic_field "gaussian")
    # where a Gaussian's attention input and label code come from in stage 2: "volume", a shared VM field
    # at its centre plus its appearance (tensorf's design; synthetic scene: 92.6 vs 80.3 mIoU with the
    # same targets, docs/benchmarks.md), or "gaussian", free parameters per Gaussian
    semantic_field: str = "volume"
    semantic_voxels: int = 96 ** 3  # cells of the "volume" field's grids
    # what stage 2's losses compare: "lifted", the CLIP features of all training views averaged onto each
    # Gaussian by its blending weights (one rasterizer pass per view, lift.py), semantic_rays Gaussians per
    # step; or "pixels", semantic_rays pixels of semantic_views rendered views per step (ray-space, as
    # tensorf). Synthetic scene: lifted 92.6 mIoU, pixels 70.8 (docs/benchmarks.md)
    semantic_supervision: str = "lifted"
    lr_field_grid: float = 1e-2
    lr_field_net: float = 1e-2
    lr_means_final: float = 0.01  # exponential decay of the means' lr to this fraction
    refine_start: int = 500
    refine_stop: int = 15000
    refine_every: int = 100
    reset_every: int = 3000
    grow_grad2d: float = 0.0002
    prune_opa: float = 0.005  # refinement prunes Gaussians less opaque than this
    coarse_until: int = 0  # stage 1 steps before this render at half resolution (CPU preset)
    semantic_scale: float = 0.5  # stage 2 renders at this fraction of the resolution (CLIP targets are coarse)
    semantic_rays: int = 4096  # pixels per step used in the semantic losses, shared by the views
    # views rendered per stage-2 step: the shared heads overfit one viewpoint per update otherwise
    # (synthetic scene: 1 view 70.6 mIoU, 4 views 79.4; docs/benchmarks.md)
    semantic_views: int = 4
    # stage-2 learning rates fall by this factor over the stage (tensorf uses 0.1); 1.0 = constant, the
    # setting every gsplat figure in docs/benchmarks.md was measured with (0.1 is not measured yet)
    semantic_lr_decay: float = 1.0
    checkpoint_every: int = 1000
    eval_every: int = 0
    semantic: SemanticConfig = field(default_factory=SemanticConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["semantic"] = self.semantic.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GsplatConfig":
        known = cls.__dataclass_fields__
        kw = {k: v for k, v in data.items() if k in known and k != "semantic"}
        return cls(**kw, semantic=SemanticConfig.from_dict(data.get("semantic", {})))


def preset(name: str) -> GsplatConfig:
    """``default`` (3DGS schedule, GPU-sized) or ``fast`` (CPU-sized, same stages)."""
    if name == "default":
        return GsplatConfig()
    if name == "fast":
        return GsplatConfig(
            iters=800, coarse_until=400, init_points=20000, max_gaussians=30000, prune_opa=0.02, sh_degree=1, sh_degree_every=300,
            refine_start=150, refine_stop=600, refine_every=75, reset_every=100000, grow_grad2d=0.0002,
            checkpoint_every=200, eval_every=400,
            semantic=SemanticConfig(iters=500, joint_start=170, sct_start=270, batch_rays=4096, lr_heads=2e-3),
        )
    raise ValueError(f"unknown preset {name!r}; choose 'default' or 'fast'")
