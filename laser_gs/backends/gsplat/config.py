"""gsplat backend settings and presets (stage 2 reads the shared ``semantic`` settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from laser_gs.settings import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, SHARE, SettingsError, bounded, schedule)
from laser_gs.training.semantic import SemanticSettings
from laser_gs.training.settings import Preset, ReconstructionSettings, TrainerSettings


@dataclass
class GsplatSettings(ReconstructionSettings):
    """3D Gaussians: stage 1 (photometric fit with gsplat's densification) and the stage 2 semantic field."""

    stage2_fields: ClassVar[frozenset[str]] = frozenset({
        "semantic_voxels", "semantic_comps", "label_comps", "field_width", "semantic_pool", "appearance_scale",
        "lift_scale", "lift_dims", "fuse_lift", "smooth_iters", "smooth_neighbours", "smooth_space",
        "smooth_colour", "lr_field_grid", "lr_field_net"})

    init_points: int = bounded(100_000, AT_LEAST_ONE)
    """Gaussians at the start."""
    init_from: Literal["auto", "sparse", "random"] = "auto"
    """Where the first Gaussians sit; the rest of ``init_points`` is drawn at random (camera frusta for
    forward-facing scenes, the scene box otherwise). ``sparse``: the scene's structure-from-motion points
    (COLMAP scenes), else points triangulated from the training views with the known poses (pycolmap;
    cached beside the scene). ``auto``: SfM points when the scene has them; triangulated points for 360°
    scenes, whose random start fills a box that is mostly empty; forward-facing scenes without points start
    at random, because there triangulated points gave +0.35 dB but a less reliable trained stage 2 (outcome
    scene, three seeds: 69.8 +- 9.6 mIoU against 78.0 +- 2.3; docs/benchmarks.md). ``random``: no points."""
    init_content_share: float = bounded(0.8, SHARE)
    """360° scenes started from sparse points: this share of the random rest of ``init_points`` is drawn in the
    box around the points (their 2-98 % range, widened by a quarter) instead of the whole scene box, which
    for an open floor or sky is mostly empty."""
    unbounded: Literal["auto", "off"] = "auto"
    """360° scenes whose box reaches far beyond the cameras (an open floor, a sky; ``laser inspect`` says):
    ``auto`` seeds ``background_share`` of the Gaussians on a sphere for what lies far away, and the stage 2
    semantic field reads contracted positions (mip-NeRF 360), so the far floor does not stretch its grid."""
    background_share: float = bounded(0.1, Range(0, 1, hi_open=True))
    """Unbounded scenes: share of ``init_points`` on the background sphere."""
    background_radius: float = bounded(10.0, Range(1, lo_open=True))
    """Unbounded scenes: the background sphere's radius, in radii of the ball around the cameras."""
    max_gaussians: int = bounded(0, Range(0, 1e9))
    """Cap on the number of Gaussians (densification beyond it prunes the least opaque); 0 = no cap."""
    init_max_pixels: float = bounded(1.5, POSITIVE)
    """Cap on the initial scale, in pixels at the nearest camera."""
    sh_degree: int = bounded(3, Range(0, 3))
    """Spherical-harmonics degree of the colours."""
    sh_degree_every: int = schedule(1000, minimum=1)
    """One more SH band every this many steps (3DGS)."""
    ssim_lambda: float = bounded(0.2, SHARE)
    """Weight of D-SSIM in the photometric loss (the rest is L1)."""
    lr_means: float = bounded(1.6e-4, POSITIVE)
    """Learning rate of the centres, times the scene scale."""
    lr_means_final: float = bounded(0.01, Range(0, 1, lo_open=True))
    """The centres' learning rate decays exponentially to this fraction over stage 1."""
    lr_scales: float = bounded(5e-3, POSITIVE)
    """Learning rate of the log-scales."""
    lr_quats: float = bounded(1e-3, POSITIVE)
    """Learning rate of the rotations."""
    lr_opacities: float = bounded(5e-2, POSITIVE)
    """Learning rate of the opacity logits."""
    lr_sh0: float = bounded(2.5e-3, POSITIVE)
    """Learning rate of the base colour."""
    lr_shN: float = bounded(2.5e-3 / 20, POSITIVE)
    """Learning rate of the view-dependent SH coefficients."""
    refine_start: int = schedule(500, minimum=1)
    """First step of densification and pruning (gsplat's DefaultStrategy)."""
    refine_stop: int = schedule(15000, minimum=2)
    """Last step of densification and pruning."""
    refine_every: int = schedule(100, minimum=10)
    """Steps between densification rounds."""
    reset_every: int = schedule(3000, minimum=1)
    """Steps between opacity resets."""
    grow_grad2d: float = bounded(0.0002, POSITIVE)
    """Screen-space gradient above which a Gaussian is cloned or split."""
    prune_opa: float = bounded(0.005, Range(0, 1, hi_open=True))
    """Refinement prunes Gaussians less opaque than this."""
    coarse_until: int = schedule(0)
    """Stage 1 steps before this one render at half resolution (CPU preset)."""
    semantic_voxels: int = bounded(96 ** 3, AT_LEAST_ONE)
    """Cells of the stage 2 semantic field's grids (a VM field over the Gaussians' box, as tensorf's)."""
    semantic_comps: tuple[int, int, int] = bounded((16, 8, 8), AT_LEAST_ONE)
    """VM components of the semantic field's position volume."""
    label_comps: tuple[int, int, int] = bounded((8, 4, 4), AT_LEAST_ONE)
    """VM components of the semantic field's label volume."""
    field_width: int = bounded(64, AT_LEAST_ONE)
    """Hidden width of the semantic field's MLP."""
    semantic_pool: Literal["all", "batch"] = "batch"
    """Stage 2 steps evaluate the field and the transient attention on the ``batch`` of Gaussians drawn for the
    step (as tensorf pools over its ray batch), or on ``all`` Gaussians (as when rendering). Default scene,
    three seeds: batch 92.6 / 89.5 / 89.5 mIoU and 1.5x faster, all 91.2 / 84.6 (docs/benchmarks.md)."""
    appearance_scale: float = bounded(1.0, NON_NEGATIVE)
    """Weight of a Gaussian's appearance (colour and SH) in the field's input, beside its position's VM
    features; 0 reads position only."""
    lift_scale: float = bounded(0.5, Range(0, 1, lo_open=True))
    """Stage 2 lifts the CLIP features of every training view, rendered at this fraction of the resolution,
    onto the Gaussians (CLIP's token grid is coarse)."""
    lift_dims: int = bounded(64, NON_NEGATIVE)
    """Lifting works on the features projected on their strongest ``lift_dims`` directions (all views' tokens,
    SVD): the cost of a view is linear in its channels, and the rest carries little (0: all ``D``)."""
    fuse_lift: bool = True
    """After the trained stage 2, each Gaussian's feature becomes the sum of its trained and its lifted CLIP
    feature (each unit length), stored as the lift stores features (the label volume stays). The trained
    stage 2 sometimes merges or loses objects the lift keeps, and the lift merges objects the training
    separates: over 8 generated scenes, calibrated, 71.4 +- 17.2 trained, 75.0 +- 15.9 lift, 77.7 +- 16.8
    fused (per scene -1.4 to +16.0 over trained; docs/benchmarks.md)."""
    smooth_iters: int = bounded(30, Range(0, 1000))
    """Lifted and fused features (``fuse_lift``, ``semantic.method = lift``) are smoothed over the Gaussians by
    this many steps of a bilateral diffusion (neighbours in space and of one chromaticity; 0: off). The teacher
    mixes a thin object or one of its background's colour with its surround in every view; the diffusion
    makes each surface read one thing, which the class calibration can then pick (camouflaged pillar 47 -> 78
    IoU on random_s4; docs/benchmarks.md, "Camouflaged objects")."""
    smooth_neighbours: int = bounded(16, AT_LEAST_ONE)
    """Nearest Gaussians each one is smoothed with."""
    smooth_space: float = bounded(2.0, POSITIVE)
    """Spatial sigma of the smoothing, in median nearest-neighbour distances of the Gaussians."""
    smooth_colour: float = bounded(0.02, POSITIVE)
    """Chromaticity sigma of the smoothing (a colour edge between materials stops it; shading does not)."""
    lr_field_grid: float = bounded(1e-2, POSITIVE)
    """Learning rate of the semantic field's grids."""
    lr_field_net: float = bounded(1e-2, POSITIVE)
    """Learning rate of the semantic field's MLP and label basis."""

    def validate(self) -> None:
        super().validate()
        if self.refine_stop <= self.refine_start:
            raise SettingsError(f"setting gsplat.refine_stop ({self.refine_stop}) must be after refine_start "
                                f"({self.refine_start})")

    def scaled(self, old: int, new: int) -> "GsplatSettings":
        out = super().scaled(old, new)
        return out.replace(refine_stop=max(out.refine_start + 1, out.refine_stop))


def _default() -> Preset:
    return Preset(GsplatSettings(), SemanticSettings(batch_size=4096, lr_decay=1.0),
                  TrainerSettings(checkpoint_every=1000))


def _fast() -> Preset:
    return Preset(
        GsplatSettings(iters=800, coarse_until=400, init_points=20000, max_gaussians=30000, prune_opa=0.02,
                       sh_degree=1, sh_degree_every=300, refine_start=150, refine_stop=600, refine_every=75,
                       reset_every=100000),
        SemanticSettings(iters=500, joint_start=170, sct_start=270, batch_size=4096, lr_heads=2e-3, lr_decay=1.0),
        TrainerSettings(checkpoint_every=200, eval_every=400))


def _quick() -> Preset:
    # Stage 2 is lifted, not trained: on the default generated scene the lift of this short stage 1 scores 80.0
    # mIoU (teacher 65.4) in 3 s, while 250-500 trained stage-2 steps ended at 66.9-72.3 (the two red objects
    # merged; docs/benchmarks.md). The fast preset trains stage 2.
    return Preset(
        GsplatSettings(iters=500, coarse_until=250, init_points=12000, max_gaussians=16000, prune_opa=0.02,
                       sh_degree=1, sh_degree_every=150, refine_start=80, refine_stop=375, refine_every=40,
                       reset_every=100000),
        SemanticSettings(method="lift", iters=250, joint_start=85, sct_start=135, batch_size=4096, lr_heads=2e-3,
                         lr_decay=1.0),
        TrainerSettings(checkpoint_every=100, eval_every=0))


#: ``default`` (3DGS schedule, GPU-sized), ``fast`` (CPU-sized, same stages) and ``quick`` (the few-minute
#: demo on a CPU: fewer steps and Gaussians, lifted semantics).
PRESETS = {"default": _default, "fast": _fast, "quick": _quick}
