"""Dense CLIP extraction for a whole scene, and the ``--features`` sources.

``--features clip`` extracts each view once (one ViT pass per view, sliding
windows when large) and keeps the grids for the whole run, instead of the
paper's online extraction on random crops at every iteration: the features
are a deterministic function of the view, so caching them gives the same
supervision for a fraction of the compute, and the result can be written to
disk (``laser features extract``) and reused as ``--features precomputed``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from laser_gs.data.scene import Scene
from laser_gs.features.dense_clip import DenseCLIP
from laser_gs.features.precomputed import FeatureSet, load_feature_dir, write_feature_dir
from laser_gs.semantics.losses import augment_prompts

FEATURE_SOURCES = ("clip", "precomputed", "none")


def extract_features(scene: Scene, clip: DenseCLIP, out: Path | None = None,
                     on_view: Callable[[int, float], None] | None = None, window: int | None = None) -> FeatureSet:
    """Dense features of every view plus the class text embeddings.

    Args:
        scene: the scene (all views are encoded).
        clip: the dense CLIP model.
        out: folder to write in the precomputed format, or None.
        on_view: called as ``on_view(index, seconds)`` after each view (progress bars).
        window: sliding-window size in pixels (see :meth:`DenseCLIP.encode_image`).
    """
    grids: dict[str, torch.Tensor] = {}
    for i, name in enumerate(scene.image_names):
        t0 = time.perf_counter()
        grids[name] = clip.encode_image(scene.images[i], window=window)
        if on_view is not None:
            on_view(i, time.perf_counter() - t0)
    text = clip.encode_text(scene.classes) if scene.classes else None
    text_aug = clip.encode_text(augment_prompts(scene.classes)) if scene.classes else None
    meta = {"dim": clip.dim, "model": clip.name, "mode": clip.mode, "patch_size": clip.patch_size}
    if out is not None:
        write_feature_dir(out, {k: v.numpy() for k, v in grids.items()},
                          None if text is None else text.numpy(), None if text_aug is None else text_aug.numpy(),
                          model=clip.name, extra_meta={"mode": clip.mode, "patch_size": clip.patch_size})
        return load_feature_dir(out, scene.image_names, scene.classes or None)
    return FeatureSet(directory=Path(""), dim=clip.dim, meta=meta,
                      grids={k: v.half().float() for k, v in grids.items()}, text=text, text_aug=text_aug)


def load_features(kind: str, scene: Scene, features_dir: str | Path | None = None,
                  clip_loader: Callable[[], DenseCLIP] | None = None) -> FeatureSet | None:
    """The feature source chosen with ``--features``.

    Args:
        kind: ``"clip"``, ``"precomputed"`` or ``"none"``.
        scene: the scene the features are for.
        features_dir: precomputed folder (default ``SCENE/features``).
        clip_loader: returns the dense CLIP model for ``"clip"`` (it fails fast without weights).
    """
    if kind == "none":
        return None
    if kind == "precomputed":
        folder = Path(features_dir) if features_dir else scene.feature_dir or scene.root / "features"
        return load_feature_dir(folder, scene.image_names, scene.classes or None)
    if kind == "clip":
        if clip_loader is None:
            raise ValueError("--features clip needs a CLIP loader")
        return extract_features(scene, clip_loader())
    raise ValueError(f"unknown feature source {kind!r}; choose one of {FEATURE_SOURCES}")

