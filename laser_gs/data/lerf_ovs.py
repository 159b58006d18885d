"""LERF-OVS labels: one labelme-style JSON per annotated frame, polygons and boxes per category.

The release (LangSplat's ``lerf_ovs/label/<scene>/frame_XXXXX.json``) holds, per frame::

    {"info": {"name": "frame_00041.jpg", "width": 988, "height": 731},
     "objects": [{"category": "sheep", "segmentation": [[x, y], ...], "bbox": [x1, y1, x2, y2]}, ...]}

Coordinates are pixels of the ``info`` size (x right, y down, the pixel ``(i, j)`` covers
``[i, i+1) x [j, j+1)``); several objects of one category are one mask (their union) with several
boxes. A frame is matched to a scene image by the stem of ``info.name`` (or of the JSON file).
Polygons are rasterised at the loaded image size by testing pixel centres (even-odd rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from laser_gs.errors import SceneError

#: the folder names searched in a scene for LERF-OVS labels
LABEL_FOLDERS = ("label", "labels", "lerf_ovs_label")


@dataclass
class FrameLabels:
    """One annotated frame at the scene's loaded size.

    Attributes:
        view: the scene image index.
        masks: category -> ``[H, W]`` bool (union of its polygons).
        boxes: category -> ``[K, 4]`` float ``x1, y1, x2, y2`` in loaded pixels.
    """

    view: int
    masks: dict[str, Tensor]
    boxes: dict[str, Tensor]


def find_label_dir(scene_root: Path) -> Path | None:
    """The scene's LERF-OVS label folder (``label/``, ``labels/``), or None."""
    for name in LABEL_FOLDERS:
        d = Path(scene_root) / name
        if d.is_dir() and any(d.glob("*.json")):
            return d
    return None


def polygon_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` bool: pixel centres inside the polygon ``points`` ``[N, 2]`` (x, y; even-odd rule).

    Vectorised over pixels; the loop runs over the polygon's edges.
    """
    W, H = size
    xs = np.arange(W, dtype=np.float64) + 0.5
    ys = np.arange(H, dtype=np.float64) + 0.5
    px, py = np.meshgrid(xs, ys)
    inside = np.zeros((H, W), dtype=bool)
    n = len(points)
    for k in range(n):
        (x0, y0), (x1, y1) = points[k], points[(k + 1) % n]
        if y0 == y1:
            continue
        crosses = (y0 > py) != (y1 > py)
        x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < x_at)
    return inside


def _polygons(segmentation, path: Path, category: str) -> list[np.ndarray]:
    """One or several polygons: ``[[x, y], ...]``, ``[[[x, y], ...], ...]`` or COCO's flat ``[x, y, x, y, ...]``."""
    arr = segmentation
    if not isinstance(arr, list) or not arr:
        raise SceneError(f"object {category!r}: 'segmentation' must be a non-empty list of polygons ([x, y] "
                         f"points), got {type(arr).__name__ if arr is not None else 'nothing'}", path)
    try:
        if arr and isinstance(arr[0], (int, float)):
            polys = [np.asarray(arr, dtype=np.float64).reshape(-1, 2)]
        elif arr and arr[0] and isinstance(arr[0][0], (int, float)):
            polys = [np.asarray(arr, dtype=np.float64).reshape(-1, 2)] if len(arr[0]) == 2 else \
                [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in arr]
        else:
            polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in arr]
    except (TypeError, ValueError, IndexError):
        raise SceneError(f"object {category!r}: 'segmentation' is not a list of [x, y] points", path) from None
    for p in polys:
        if len(p) < 3 or not np.isfinite(p).all():
            raise SceneError(f"object {category!r}: a polygon needs at least 3 finite [x, y] points", path)
    return polys


def read_frame(path: Path, image_index: dict[str, int], size: tuple[int, int]) -> FrameLabels:
    """Read one frame's JSON; polygons and boxes scaled from its ``info`` size to ``size = (W, H)``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SceneError(f"cannot read LERF-OVS label ({exc})", path) from None
    info = data.get("info") if isinstance(data, dict) else None
    objects = data.get("objects") if isinstance(data, dict) else None
    if not isinstance(info, dict) or not isinstance(objects, list):
        raise SceneError("not a LERF-OVS label: expected {'info': {...}, 'objects': [...]}", path)
    w0, h0 = info.get("width"), info.get("height")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and v > 0
               for v in (w0, h0)):
        raise SceneError(f"info needs positive integer 'width' and 'height' (got {w0!r} x {h0!r})", path)
    w0, h0 = int(w0), int(h0)
    if not objects:
        raise SceneError("the frame lists no objects: there is nothing to score in it", path,
                         "remove the file or add its objects")
    stem = Path(str(info.get("name") or Path(path).stem)).stem
    if stem not in image_index:
        stem = Path(path).stem
    if stem not in image_index:
        raise SceneError(f"frame {info.get('name', stem)!r} is not an image of the scene", path,
                         "name the JSON (or its info.name) after an image file of the scene")
    W, H = size
    if abs((w0 / h0) / (W / H) - 1) > 0.02:  # a downscaled scene keeps the aspect; another camera does not
        raise SceneError(f"labels are for a {w0}x{h0} image, but the scene's images are {W}x{H} (another aspect "
                         "ratio): these labels belong to other images", path)
    sx, sy = W / w0, H / h0
    masks: dict[str, np.ndarray] = {}
    boxes: dict[str, list[list[float]]] = {}
    tol = 1.0  # labelme points may sit on the far border
    for obj in objects:
        cat = str(obj.get("category", "")).strip() if isinstance(obj, dict) else ""
        if not cat:
            raise SceneError("an object has no 'category'", path)
        polys = _polygons(obj.get("segmentation"), path, cat)
        for p in polys:
            if (p[:, 0] < -tol).any() or (p[:, 1] < -tol).any() or (p[:, 0] > w0 + tol).any() or \
                    (p[:, 1] > h0 + tol).any():
                raise SceneError(f"object {cat!r}: polygon outside the {w0}x{h0} image", path,
                                 "coordinates are pixels of info.width x info.height")
        m = np.zeros((H, W), dtype=bool)
        for p in polys:
            m |= polygon_mask(p * (sx, sy), size)
        masks[cat] = masks[cat] | m if cat in masks else m
        if obj.get("bbox") is not None:
            try:
                b = np.asarray(obj["bbox"], dtype=np.float64).reshape(4)
            except (TypeError, ValueError):
                raise SceneError(f"object {cat!r}: 'bbox' is not [x1, y1, x2, y2]", path) from None
            if not np.isfinite(b).all() or b[2] < b[0] or b[3] < b[1]:
                raise SceneError(f"object {cat!r}: 'bbox' {obj['bbox']!r} is not finite [x1, y1, x2, y2] with "
                                 "x1 <= x2 and y1 <= y2", path)
        else:  # no box: the polygons' extent
            allp = np.concatenate(polys)
            b = np.array([allp[:, 0].min(), allp[:, 1].min(), allp[:, 0].max(), allp[:, 1].max()])
        boxes.setdefault(cat, []).append([b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy])
    return FrameLabels(image_index[stem], {c: torch.from_numpy(m) for c, m in masks.items()},
                       {c: torch.tensor(v, dtype=torch.float32) for c, v in boxes.items()})


def read_lerf_labels(label_dir: Path, image_names: list[str], size: tuple[int, int]) -> list[FrameLabels]:
    """Every ``*.json`` of ``label_dir``, sorted by view index."""
    label_dir = Path(label_dir)
    files = sorted(label_dir.glob("*.json"))
    if not files:
        raise SceneError("no LERF-OVS label files (*.json)", label_dir,
                         "point --labels at the folder with one frame_XXXXX.json per annotated frame")
    index = {n: i for i, n in enumerate(image_names)}
    frames = [read_frame(f, index, size) for f in files]
    seen: dict[int, Path] = {}
    for f, fr in zip(files, frames):
        if fr.view in seen:
            raise SceneError(f"image {image_names[fr.view]!r} is labelled twice (also in {seen[fr.view].name})", f)
        seen[fr.view] = f
    return sorted(frames, key=lambda fr: fr.view)


def write_lerf_labels(out_dir: Path, image_names: list[str], size: tuple[int, int], classes: list[str],
                      masks: dict[int, Tensor]) -> list[Path]:
    """Write 3D-OVS-style masks (``{view: [C, H, W] bool}``) as LERF-OVS JSON, one polygon per row run of
    pixels (exact under pixel-centre rasterisation). For tests and for converting annotations."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    W, H = size
    paths = []
    for v, m in sorted(masks.items()):
        objects = []
        for c, cls in enumerate(classes):
            mk = m[c].numpy()
            if not mk.any():
                continue
            ys, xs = np.nonzero(mk)
            # row runs from the edges of the mask padded with a background column each side
            edges = np.diff(np.pad(mk, ((0, 0), (1, 1))).astype(np.int8), axis=1)
            ry, x0 = np.nonzero(edges == 1)
            _, x1 = np.nonzero(edges == -1)  # same row-major order: the run's end (exclusive)
            polys = np.stack([np.stack([x0, ry], 1), np.stack([x1, ry], 1), np.stack([x1, ry + 1], 1),
                              np.stack([x0, ry + 1], 1)], axis=1).tolist()
            objects.append({"category": cls, "segmentation": polys,
                            "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]})
        p = out_dir / f"{image_names[v]}.json"
        p.write_text(json.dumps({"info": {"name": f"{image_names[v]}.png", "width": W, "height": H},
                                 "objects": objects}), encoding="utf-8")
        paths.append(p)
    return paths
