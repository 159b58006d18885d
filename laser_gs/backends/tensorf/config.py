"""TensoRF backend settings and the two presets.

``default`` follows the paper and the authors' code (sections 2 and 6 of the
reference notes): 128^3 -> 640^3 voxels, VM components [16,4,4] / [48,12,12],
4096-ray batches, 30k reconstruction + 15k semantic iterations. ``fast`` keeps
every stage and schedule but shrinks grids, samples and iteration counts so a
scene trains in minutes on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from laser_gs.settings import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, bounded, schedule)
from laser_gs.training.semantic import SemanticSettings
from laser_gs.training.settings import Preset, ReconstructionSettings, TrainerSettings


@dataclass
class TensoRFSettings(ReconstructionSettings):
    """The TensoRF field and its stage 1; stage 2 reads ``semantic`` settings plus the joint learning rates here."""

    stage2_fields: ClassVar[frozenset[str]] = frozenset({"semantic_comps", "lr_app_joint", "lr_net_joint",
                                                         "lift_voxels", "lift_scale"})

    batch_rays: int = bounded(4096, AT_LEAST_ONE)
    """Rays per stage 1 step."""
    unbounded: Literal["auto", "box"] = "auto"
    """360° scenes whose box reaches far beyond the cameras (an open floor, a sky): ``auto`` contracts space
    beyond a ball around the rig (mip-NeRF 360; the grids then span the contracted ball), ``box`` keeps a
    plain grid over the whole box. Forward-facing scenes always use NDC, object captures their box."""
    contract_radius_scale: float = bounded(1.0, POSITIVE)
    """Radius of the ball kept linear, as a multiple of the farthest camera's distance from the rig's centre."""
    voxels_init: int = bounded(128 ** 3, AT_LEAST_ONE)
    """Voxels of the grids at the start."""
    voxels_final: int = bounded(640 ** 3, AT_LEAST_ONE)
    """Voxels after the last upsampling (log-linear steps in between)."""
    upsample_at: tuple[int, ...] = schedule((2000, 3000, 4000, 5500), "steps")
    """Stage 1 steps at which the grids are upsampled (optimizers restart)."""
    occupancy_at: tuple[int, ...] = schedule((2000, 4000), "steps")
    """Stage 1 steps at which the occupancy grid (alpha mask) is recomputed."""
    density_comps: tuple[int, int, int] = bounded((16, 4, 4), AT_LEAST_ONE)
    """VM components of the density volume (also the label volume's)."""
    app_comps: tuple[int, int, int] = bounded((48, 12, 12), AT_LEAST_ONE)
    """VM components of the appearance volume."""
    semantic_comps: tuple[int, int, int] = bounded((16, 8, 8), AT_LEAST_ONE)
    """VM components of the stage 2 semantic volume (ours, see docs/method.md)."""
    app_dim: int = bounded(27, AT_LEAST_ONE)
    """Width of the appearance feature."""
    mlp_width: int = bounded(128, AT_LEAST_ONE)
    """Hidden width of the RGB and feature MLPs."""
    step_ratio: float = bounded(0.5, POSITIVE)
    """Sample spacing in voxels (box scenes)."""
    ndc_samples: int = bounded(128, AT_LEAST_ONE)
    """Samples per ray in NDC (forward-facing scenes)."""
    max_samples: int = bounded(1024, AT_LEAST_ONE)
    """Cap on samples per ray (box scenes)."""
    lr_grid: float = bounded(0.02, POSITIVE)
    """Learning rate of the grids."""
    lr_net: float = bounded(1e-3, POSITIVE)
    """Learning rate of the appearance basis and RGB MLP."""
    lr_decay: float = bounded(0.1, Range(0, 1, lo_open=True))
    """Stage 1 learning rates fall by this factor over the stage (restarting at each upsampling)."""
    tv_density: float = bounded(1.0, NON_NEGATIVE)
    """Total-variation weight of the density (forward-facing scenes; times 1e-2 inside, as TensoRF)."""
    tv_app: float = bounded(1.0, NON_NEGATIVE)
    """Total-variation weight of the appearance (forward-facing scenes)."""
    l1_density: float = bounded(8e-5, NON_NEGATIVE)
    """L1 weight of the density (box scenes)."""
    distance_scale: float = bounded(25.0, POSITIVE)
    """Density scale in alpha compositing."""
    weight_threshold: float = bounded(1e-4, Range(0, 1))
    """Samples with a smaller compositing weight are skipped."""
    occupancy_threshold: float = bounded(1e-4, Range(0, 1))
    """Alpha below which an occupancy cell is empty."""
    lr_app_joint: float = bounded(5e-3, NON_NEGATIVE)
    """Learning rate of the appearance grids in phase ``joint`` (stage 2 after ``semantic.joint_start``)."""
    lr_net_joint: float = bounded(5e-5, NON_NEGATIVE)
    """Learning rate of the appearance basis and RGB MLP in phase ``joint``."""
    lift_voxels: int = bounded(64 ** 3, AT_LEAST_ONE)
    """Cells of the grid the CLIP features are lifted into (``semantic.method = "lift"``)."""
    lift_scale: float = bounded(0.5, Range(0, 1, lo_open=True))
    """The lift marches every training view at this fraction of its resolution."""


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
