"""The precomputed dense-feature directory format, read and written in one place.

Layout of ``SCENE/features/`` (or any ``--features-dir``)::

    meta.json                 {"dim": D, "model": "<free text>", ...}
    <image name>.npy          [h, w, D] float16 or float32, one per image
    text_embeddings.npy       [C, D], one row per line of segmentations/classes.txt
    text_embeddings_aug.npy   optional [C, D], the repeated-prompt embeddings (paper 3.4)

The token grid covers the whole image: cell ``(i, j)`` covers rows
``i*H/h .. (i+1)*H/h`` and columns ``j*W/w .. (j+1)*W/w``; ``h, w`` need not
divide the image size. ``<image name>`` is the file stem for LLFF scenes and
``<split>/<stem>`` for Blender scenes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from laser_gs.atomic import atomic_open, atomic_write_text
from laser_gs.errors import FeatureError

META_FILE = "meta.json"
TEXT_FILE = "text_embeddings.npy"
TEXT_AUG_FILE = "text_embeddings_aug.npy"
_FLOAT_DTYPES = (np.float16, np.float32)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def write_feature_dir(out: Path, features: dict[str, np.ndarray], text: np.ndarray | None,
                      text_aug: np.ndarray | None = None, model: str = "unknown",
                      extra_meta: dict | None = None, dtype: type = np.float16) -> None:
    """Write a feature directory; each file is written atomically.

    Args:
        out: target folder (created).
        features: image name -> ``[h, w, D]`` array.
        text: ``[C, D]`` class text embeddings (None when the scene has no classes).
        text_aug: ``[C, D]`` augmented-prompt embeddings or None.
        model: free-text description stored in ``meta.json``.
        extra_meta: more keys for ``meta.json``.
        dtype: storage dtype of the per-image grids (float16 halves the size).
    """
    out = Path(out)
    dims = {a.shape[-1] for a in features.values()}
    if len(dims) != 1:
        raise FeatureError(f"all feature grids must share one dim, got {sorted(dims)}")
    dim = dims.pop()
    for name, arr in features.items():
        _atomic_save_npy(out / f"{name}.npy", np.asarray(arr, dtype=dtype))
    if text is not None:
        _atomic_save_npy(out / TEXT_FILE, np.asarray(text, dtype=np.float32))
    if text_aug is not None:
        _atomic_save_npy(out / TEXT_AUG_FILE, np.asarray(text_aug, dtype=np.float32))
    meta = {"dim": int(dim), "model": model, **(extra_meta or {})}
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2))


@dataclass
class FeatureSet:
    """A validated feature directory.

    Attributes:
        directory: the folder.
        dim: feature width D.
        meta: ``meta.json`` content.
        grids: image name -> ``[h, w, D]`` float32 tensor.
        text: ``[C, D]`` float32 L2-normalised text embeddings, or None.
        text_aug: ``[C, D]`` float32 L2-normalised augmented text embeddings, or None.
    """

    directory: Path
    dim: int
    meta: dict
    grids: dict[str, Tensor] = field(repr=False)
    text: Tensor | None = None
    text_aug: Tensor | None = None

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(h, w)`` of the first grid (grids may differ per image)."""
        g = next(iter(self.grids.values()))
        return int(g.shape[0]), int(g.shape[1])

    def nbytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())


REEXTRACT = "re-extract the features with `laser features extract --scene SCENE --force`"


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FeatureError(f"{path}: file not found; {REEXTRACT}")
    try:
        return np.load(path, allow_pickle=False)
    except Exception:  # corrupt header, pickled object arrays, truncated data (numpy's advice does not apply)
        raise FeatureError(f"{path}: not a readable numeric .npy array (damaged, truncated or pickled); "
                           f"{REEXTRACT}") from None


def _check_finite(path: Path, arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        raise FeatureError(f"{path}: contains NaN or Inf values; {REEXTRACT}")


def _normalise(x: np.ndarray) -> Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float32))
    return t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def load_feature_dir(directory: Path, image_names: list[str], classes: list[str] | None = None) -> FeatureSet:
    """Open and validate a feature directory against a scene.

    Args:
        directory: the folder.
        image_names: the scene's image names; each needs ``<name>.npy``.
        classes: the scene's class list; when given, ``text_embeddings.npy``
            must have one row per class.

    Raises:
        FeatureError: naming the offending file and what to do about it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FeatureError(f"{directory}: feature directory not found; run `laser features extract` "
                           "or pass --features-dir")
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise FeatureError(f"{meta_path}: file not found; a feature directory needs meta.json with "
                           '{"dim": D, "model": "..."}')
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        dim = int(meta["dim"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FeatureError(f"{meta_path}: cannot read 'dim' ({exc.__class__.__name__}: {exc})") from None
    if dim <= 0:
        raise FeatureError(f"{meta_path}: 'dim' must be positive, got {dim}")

    grids: dict[str, Tensor] = {}
    for name in image_names:
        path = directory / f"{name}.npy"
        arr = _load_npy(path)
        if arr.ndim != 3:
            raise FeatureError(f"{path}: expected [h, w, D], got shape {list(arr.shape)}")
        if arr.shape[-1] != dim:
            raise FeatureError(f"{path}: feature dim is {arr.shape[-1]} but meta.json says {dim}")
        if arr.dtype not in _FLOAT_DTYPES:
            raise FeatureError(f"{path}: dtype {arr.dtype} is not float16 or float32")
        _check_finite(path, arr)
        grids[name] = torch.from_numpy(arr.astype(np.float32))

    text = text_aug = None
    text_path = directory / TEXT_FILE
    if classes is not None or text_path.exists():
        raw = _load_npy(text_path)
        if raw.ndim != 2 or raw.shape[1] != dim:
            raise FeatureError(f"{text_path}: expected [C, {dim}], got shape {list(raw.shape)}")
        if classes is not None and raw.shape[0] != len(classes):
            raise FeatureError(f"{text_path}: has {raw.shape[0]} rows but classes.txt has {len(classes)} classes; "
                               "it needs one row per class, in classes.txt order")
        _check_finite(text_path, raw)
        text = _normalise(raw)
        aug_path = directory / TEXT_AUG_FILE
        if aug_path.exists():
            raw_aug = _load_npy(aug_path)
            if raw_aug.shape != raw.shape:
                raise FeatureError(f"{aug_path}: shape {list(raw_aug.shape)} differs from "
                                   f"{TEXT_FILE} {list(raw.shape)}")
            _check_finite(aug_path, raw_aug)
            text_aug = _normalise(raw_aug)
    return FeatureSet(directory=directory, dim=dim, meta=meta, grids=grids, text=text, text_aug=text_aug)
