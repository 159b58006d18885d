"""The fusion bound of a generated scene: what averaging the 2D teacher's per-view evidence with perfect
geometry gives.

Every annotated pixel is classified by averaging the teacher's feature of every view at the pixel's *true*
3D point (the generator's exact geometry; a view counts when the point is in its image and not hidden, by a
depth test against that view's true depth), then taking the argmax against the text, as the teacher does.
A method below it lost evidence the teacher had; where the bound itself is low, the teacher is wrong in most
views. It is not a ceiling: trained stage 2 and the class calibration went beyond it on 9 of 11 generated
scenes (docs/benchmarks.md, "Camouflaged objects").

Only generated scenes (``scene.json`` of ``laser make-scene``) have the true geometry.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from laser_gs.data.cameras import Cameras
from laser_gs.features.precomputed import load_feature_dir
from laser_gs.metrics import segmentation_scores
from laser_gs.semantics.calibration import (CALIBRATION_STRIDE, CALIBRATION_VIEWS, add_offsets, calibration_views,
                                            class_offsets)
from laser_gs.synthetic.features import FeatureNoise
from laser_gs.synthetic.generator import GeneratedScene, SceneSpec, render_scene

#: a view sees a point when its true depth there is within this fraction of the point's depth
DEPTH_TOLERANCE = 0.02


def load_spec(scene_dir: Path) -> SceneSpec:
    """The generator settings saved in ``scene_dir/scene.json`` (``ValueError`` when it is not a generated
    scene)."""
    path = Path(scene_dir) / "scene.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a generated scene ({e}); the fusion bound needs `laser make-scene` output"
                         ) from None
    if meta.get("generator") != "laser make-scene" or not isinstance(meta.get("spec"), dict):
        raise ValueError(f"{path}: not written by `laser make-scene`; the fusion bound needs its true geometry")
    spec = dict(meta["spec"])
    noise = dict(spec.pop("feature_noise", {}))
    noise["similar_pairs"] = tuple(tuple(g) for g in noise.get("similar_pairs", ()))
    spec["target"] = tuple(spec.get("target", SceneSpec.target))
    known = {f.name for f in fields(SceneSpec)}
    return SceneSpec(**{k: v for k, v in spec.items() if k in known}, feature_noise=FeatureNoise(**noise))


def world_points(cameras: Cameras, view: int, depth: Tensor) -> Tensor:
    """``[H, W, 3]`` world points of every pixel centre of ``view`` from its z-depth ``[H, W]`` (along the camera's
    +z axis, as the generator writes it): the pixel's ray, scaled so its z component is the depth."""
    origins, dirs = cameras.pixel_rays(view)
    return origins + dirs * (depth / (dirs @ cameras.forward[view]))[..., None]


def sample_grid(grid: Tensor, uv: Tensor, width: int, height: int) -> Tensor:
    """``[P, D]`` features of a token grid ``[h, w, D]`` bilinearly upsampled to ``width x height`` (as the
    teacher upsamples it), read at pixel coordinates ``uv`` ``[P, 2]``."""
    norm = torch.stack([uv[:, 0] / width, uv[:, 1] / height], dim=-1) * 2 - 1  # align_corners=False
    out = F.grid_sample(grid.permute(2, 0, 1)[None].float(), norm[None, None], mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[0, :, 0].T


def fused_logits(scene: GeneratedScene, grids: list[Tensor], text: Tensor, view: int,
                 tolerance: float = DEPTH_TOLERANCE, stride: int = 1) -> tuple[Tensor, Tensor]:
    """``[P, C]`` cosine logits of every ``stride``-th pixel of ``view`` (row-major; ``P = H * W`` for stride 1)
    from the mean unit teacher feature over the views that see its true 3D point, and ``[P]`` how many views do.

    Args:
        scene: the generator's in-memory scene (true depth and cameras).
        grids: per view ``[h, w, D]`` teacher feature grids.
        text: ``[C, D]`` unit text embeddings.
        view: the view to classify.
        tolerance: relative depth tolerance of the visibility test.
        stride: classify every ``stride``-th pixel only.
    """
    cams, depth = scene.cameras, scene.depth
    N, H, W = depth.shape
    points = world_points(cams, view, depth[view]).reshape(-1, 3)[::stride]
    uv, z = cams.project(points)  # [N, P, 2], [N, P]
    total = torch.zeros(points.shape[0], text.shape[1])
    count = torch.zeros(points.shape[0])
    for v in range(N):  # a loop over views; each is one batched gather
        col, row = uv[v, :, 0].floor().long(), uv[v, :, 1].floor().long()
        inside = (z[v] > 0) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
        seen_depth = depth[v][row.clamp(0, H - 1), col.clamp(0, W - 1)]
        visible = inside & ((seen_depth - z[v]).abs() <= tolerance * z[v])
        if v == view:
            visible = torch.ones_like(visible)  # the pixel's own view sees it by construction
        if not visible.any():
            continue
        feat = F.normalize(sample_grid(grids[v], uv[v, visible], W, H), dim=-1)
        total[visible] += feat
        count[visible] += 1
    return F.normalize(total, dim=-1) @ text.T, count


def fusion_bound(scene_dir: Path, tolerance: float = DEPTH_TOLERANCE, max_views: int = CALIBRATION_VIEWS) -> dict:
    """3D-OVS scores (``miou``, ``per_class``, ...) of the fused teacher on a generated scene's annotated views,
    calibrated as ``laser train`` calibrates a run (class offsets from the fused logits of up to
    ``max_views`` evenly spaced views, every 4th pixel), plus ``raw`` (the scores without the
    calibration) and ``views_per_pixel`` (mean number of views that see an annotated pixel's point)."""
    scene_dir = Path(scene_dir)
    spec = load_spec(scene_dir)
    scene = render_scene(spec)
    names = sorted(p.stem for p in (scene_dir / "images").glob("*.png"))
    features = load_feature_dir(scene_dir / "features", names, scene.classes)
    if features.text is None:
        raise ValueError(f"{scene_dir / 'features'}: no text embeddings; the fusion bound needs them")
    grids = [features.grids[n] for n in names]
    C, N, H, W = len(scene.classes), len(names), spec.height, spec.width
    logits, gt, counts = {}, {}, []
    for v in scene.annotated:
        x, count = fused_logits(scene, grids, features.text, v, tolerance)
        logits[v] = x.reshape(H, W, C)
        gt[v] = F.one_hot(scene.labels[v], C).permute(2, 0, 1).bool()
        counts.append(count.float().mean())
    # the trainer's calibration (training.calibrate): offsets from evenly spaced views' logits
    rows = [fused_logits(scene, grids, features.text, v, tolerance, stride=CALIBRATION_STRIDE)[0]
            for v in calibration_views(list(range(N)), max_views)]
    offsets = class_offsets(torch.cat(rows)) if C >= 2 else torch.zeros(C)
    scores = segmentation_scores({v: add_offsets(x, offsets).argmax(-1) for v, x in logits.items()}, gt,
                                 scene.classes)
    raw = segmentation_scores({v: x.argmax(-1) for v, x in logits.items()}, gt, scene.classes)
    scores["raw"] = {"miou": raw["miou"], "per_class": raw["per_class"]}
    scores["views_per_pixel"] = float(torch.stack(counts).mean())
    return scores
