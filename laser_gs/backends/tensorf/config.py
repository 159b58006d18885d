"""TensoRF backend settings and the two presets.

``default`` follows the paper and the authors' code (sections 2 and 6 of the
reference notes): 128^3 -> 640^3 voxels, VM components [16,4,4] / [48,12,12],
4096-ray batches, 30k reconstruction + 15k semantic iterations. ``fast`` keeps
every stage and schedule but shrinks grids, samples and iteration counts so a
scene trains in minutes on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from laser_gs.settings import SettingsError, schedule
from laser_gs.training.semantic import SemanticSettings
from laser_gs.training.settings import Preset, ReconstructionSettings, TrainerSettings


@dataclass
class TensoRFSettings(ReconstructionSettings):
    """The TensoRF field and its stage 1; stage 2 reads ``semantic`` settings plus the joint learning rates here."""

    batch_rays: int = 4096
    """Rays per stage 1 step."""
    unbounded: Literal["auto", "box"] = "auto"
    """360° scenes whose box reaches far beyond the cameras (an open floor, a sky): ``auto`` contracts space
    beyond a ball around the rig (mip-NeRF 360; the grids then span the contracted ball), ``box`` keeps a
    plain grid over the whole box. Forward-facing scenes always use NDC, object captures their box."""
    contract_radius_scale: float = 1.0
    """Radius of the ball kept linear, as a multiple of the farthest camera's distance from the rig's centre."""
    voxels_init: int = 128 ** 3
    """Voxels of the grids at the start."""
    voxels_final: int = 640 ** 3
    """Voxels after the last upsampling (log-linear steps in between)."""
    upsample_at: tuple[int, ...] = schedule((2000, 3000, 4000, 5500), "steps")
    """Stage 1 steps at which the grids are upsampled (optimizers restart)."""
    occupancy_at: tuple[int, ...] = schedule((2000, 4000), "steps")
    """Stage 1 steps at which the occupancy grid (alpha mask) is recomputed."""
    density_comps: tuple[int, int, int] = (16, 4, 4)
    """VM components of the density volume (also the label volume's)."""
    app_comps: tuple[int, int, int] = (48, 12, 12)
    """VM components of the appearance volume."""
    semantic_comps: tuple[int, int, int] = (16, 8, 8)
    """VM components of the stage 2 semantic volume (ours, see docs/method.md)."""
    app_dim: int = 27
    """Width of the appearance feature."""
    mlp_width: int = 128
    """Hidden width of the RGB and feature MLPs."""
    step_ratio: float = 0.5
    """Sample spacing in voxels (box scenes)."""
    ndc_samples: int = 128
    """Samples per ray in NDC (forward-facing scenes)."""
    max_samples: int = 1024
    """Cap on samples per ray (box scenes)."""
    lr_grid: float = 0.02
    """Learning rate of the grids."""
    lr_net: float = 1e-3
    """Learning rate of the appearance basis and RGB MLP."""
    lr_decay: float = 0.1
    """Stage 1 learning rates fall by this factor over the stage (restarting at each upsampling)."""
    tv_density: float = 1.0
    """Total-variation weight of the density (forward-facing scenes; times 1e-2 inside, as TensoRF)."""
    tv_app: float = 1.0
    """Total-variation weight of the appearance (forward-facing scenes)."""
    l1_density: float = 8e-5
    """L1 weight of the density (box scenes)."""
    distance_scale: float = 25.0
    """Density scale in alpha compositing."""
    weight_threshold: float = 1e-4
    """Samples with a smaller compositing weight are skipped."""
    occupancy_threshold: float = 1e-4
    """Alpha below which an occupancy cell is empty."""
    lr_app_joint: float = 5e-3
    """Learning rate of the appearance grids in phase ``joint`` (stage 2 after ``semantic.joint_start``)."""
    lr_net_joint: float = 5e-5
    """Learning rate of the appearance basis and RGB MLP in phase ``joint``."""
    lift_voxels: int = 64 ** 3
    """Cells of the grid the CLIP features are lifted into (``semantic.method = "lift"``)."""
    lift_scale: float = 0.5
    """The lift marches every training view at this fraction of its resolution."""

    def validate(self) -> None:
        super().validate()
        if self.contract_radius_scale <= 0:
            raise SettingsError(f"setting tensorf.contract_radius_scale ({self.contract_radius_scale}) must be "
                                "positive (1 puts the farthest camera on the kept ball's surface)")


def _default() -> Preset:
    return Preset(TensoRFSettings(), SemanticSettings(), TrainerSettings(checkpoint_every=500))


def _fast() -> Preset:
    return Preset(
        TensoRFSettings(iters=3000, batch_rays=2048, voxels_init=48 ** 3, voxels_final=144 ** 3,
                        upsample_at=(400, 800, 1200, 1600), occupancy_at=(600, 1400), density_comps=(8, 4, 4),
                        app_comps=(24, 8, 8), mlp_width=64, step_ratio=1.0, ndc_samples=64, max_samples=256),
        SemanticSettings(iters=1500, joint_start=500, sct_start=800, batch_size=1024),
        TrainerSettings(checkpoint_every=250, eval_every=500))


def _quick() -> Preset:
    return Preset(
        TensoRFSettings(iters=1000, batch_rays=2048, voxels_init=40 ** 3, voxels_final=100 ** 3,
                        upsample_at=(150, 300, 450, 600), occupancy_at=(250, 500), density_comps=(8, 4, 4),
                        app_comps=(24, 8, 8), mlp_width=64, step_ratio=1.0, ndc_samples=48, max_samples=192),
        SemanticSettings(iters=1000, joint_start=330, sct_start=530, batch_size=1024),
        TrainerSettings(checkpoint_every=250, eval_every=0))


#: ``default`` (paper, GPU-sized), ``fast`` (CPU-sized, same stages) and ``quick`` (the few-minute demo on a
#: CPU: smaller grids, fewer samples and steps).
PRESETS = {"default": _default, "fast": _fast, "quick": _quick}
