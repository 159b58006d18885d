"""Blender / NeRF-synthetic and nerfstudio / instant-ngp scenes: ``transforms_{train,val,test}.json`` or one
``transforms.json``.

Each frame's ``transform_matrix`` is an OpenGL camera-to-world matrix
([right, up, back] axes); the focal length follows from ``camera_angle_x``
or from ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` (nerfstudio), given once
for all frames or per frame. Distortion coefficients (``k1 k2 p1 p2``) must
be zero: undistorted photos are expected. Frames whose image is missing are
skipped with a warning (instant-ngp's fox lists more frames than it ships).
The box is ``aabb`` when given, else a cube of half size ``1.5 * aabb_scale``
(instant-ngp's hint; 1.5 without it). RGBA images are composited on a chosen
background and the alpha is kept as the object mask. ``file_path`` entries
may omit the extension and must stay inside the scene folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from laser_gs.data.cameras import Cameras, is_forward_facing
from laser_gs.data.images import IMAGE_SUFFIXES, image_size, read_rgba
from laser_gs.data.safepath import resolve_inside
from laser_gs.data.scene import Scene
from laser_gs.errors import SceneError

SPLITS = ("train", "val", "test")
BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
DEFAULT_AABB = [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]  # NeRF-synthetic convention


def transform_files(root: Path) -> dict[str, Path]:
    """Split name -> transforms file present in ``root``."""
    found = {s: root / f"transforms_{s}.json" for s in SPLITS if (root / f"transforms_{s}.json").is_file()}
    if not found and (root / "transforms.json").is_file():
        found = {"train": root / "transforms.json"}
    return found


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SceneError(f"cannot parse JSON ({exc})", path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise SceneError("expected an object with a non-empty 'frames' list", path)
    return meta


def _frame_image(root: Path, frame: dict, source: Path) -> Path | None:
    rel = frame.get("file_path")
    if not isinstance(rel, str) or not rel:
        raise SceneError("a frame has no 'file_path'", source)
    base = resolve_inside(root, rel, source)
    if base.suffix.lower() in IMAGE_SUFFIXES and base.is_file():
        return base
    for suffix in IMAGE_SUFFIXES:
        candidate = resolve_inside(root, rel + suffix, source)
        if candidate.is_file():
            return candidate
    return None


def _frame_pose(frame: dict, source: Path, index: int) -> np.ndarray:
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except (KeyError, ValueError, TypeError):
        raise SceneError(f"frame {index} has no 4x4 'transform_matrix'", source) from None
    if m.shape != (4, 4):
        raise SceneError(f"frame {index} transform_matrix has shape {list(m.shape)}, expected 4x4", source)
    if not np.isfinite(m).all():
        raise SceneError(f"frame {index} transform_matrix has non-finite values (NaN or Inf)", source)
    return m


def _intrinsics(meta: dict, source: Path, W: int, H: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) at the loaded size (W, H) from a frame merged over its file's global keys."""
    distortion = {k: float(meta.get(k, 0.0) or 0.0) for k in ("k1", "k2", "k3", "k4", "p1", "p2")}
    if any(abs(v) > 1e-6 for v in distortion.values()):
        raise SceneError(f"distorted camera ({', '.join(f'{k}={v:g}' for k, v in distortion.items() if v)})", source,
                         "undistort the photos first (nerfstudio's ns-process-data and `laser process` do)")
    if "fl_x" in meta:
        w_file = float(meta.get("w", W))
        h_file = float(meta.get("h", H))
        sx, sy = W / w_file, H / h_file
        fx = float(meta["fl_x"]) * sx
        fy = float(meta.get("fl_y", meta["fl_x"])) * sy
        cx = float(meta.get("cx", w_file / 2)) * sx
        cy = float(meta.get("cy", h_file / 2)) * sy
        return fx, fy, cx, cy
    angle = meta.get("camera_angle_x")
    if not isinstance(angle, (int, float)) or not 0 < angle < math.pi:
        raise SceneError("missing or invalid 'camera_angle_x'", source, "give the horizontal field of view in radians")
    fx = 0.5 * W / math.tan(0.5 * float(angle))
    return fx, fx, W / 2, H / 2


def load_blender(root: Path, downscale: int | None = None, background: str = "white") -> Scene:
    """Load a NeRF-synthetic scene with all its splits into one :class:`Scene`.

    Args:
        root: folder with ``transforms_*.json``.
        downscale: integer image downscale factor.
        background: ``"white"`` or ``"black"``, the colour RGBA images are composited on.
    """
    root = Path(root)
    if background not in BACKGROUNDS:
        raise SceneError(f"unknown background {background!r}; choose one of {sorted(BACKGROUNDS)}", root)
    files = transform_files(root)
    if not files:
        raise SceneError("no transforms_train.json or transforms.json", root)
    entries: list[tuple[str, Path, np.ndarray, dict, Path]] = []
    skipped: list[str] = []
    for split, path in files.items():
        meta = _read_json(path)
        for i, frame in enumerate(meta["frames"]):
            image = _frame_image(root, frame, path)
            if image is None:
                skipped.append(str(frame.get("file_path")))
                continue
            merged = {**{k: v for k, v in meta.items() if k != "frames"}, **frame}  # per-frame keys win
            entries.append((split, image, _frame_pose(frame, path, i), merged, path))
    if not entries:
        raise SceneError(f"none of the images the frames list exists (e.g. {skipped[0]!r})", files[next(iter(files))],
                         "file_path is relative to the scene folder")
    if skipped:
        from laser_gs.progress import stderr_console

        stderr_console().print(f"[yellow]warning:[/] {root}: {len(skipped)} frame(s) without their image were "
                               f"skipped: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")

    W0, H0 = image_size(entries[0][1])
    for _, img_path, _, _, _ in entries:
        size = image_size(img_path)
        if size != (W0, H0):
            raise SceneError(f"image is {size[0]}x{size[1]} but the first image is {W0}x{H0}", img_path,
                             "all images of a scene must have the same size")
    f = downscale or 1
    W, H = W0 // f, H0 // f

    rgba = np.stack([read_rgba(p, (W, H)) for _, p, _, _, _ in entries])
    bg = np.asarray(BACKGROUNDS[background], dtype=np.float32)
    rgb = rgba[..., :3] * rgba[..., 3:] + bg * (1.0 - rgba[..., 3:])

    gl = np.stack([e[2] for e in entries])
    c2w = gl.copy()
    c2w[:, :3, 1:3] *= -1.0  # OpenGL [right, up, back] -> OpenCV [right, down, forward]
    K = torch.stack([
        torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float32)
        for fx, fy, cx, cy in (_intrinsics(meta, src, W, H) for _, _, _, meta, src in entries)
    ])
    cameras = Cameras(torch.from_numpy(c2w).float(), K, W, H)

    first_meta = entries[0][3]
    half = 1.5 * float(first_meta.get("aabb_scale", 1.0))
    aabb = torch.tensor(first_meta.get("aabb", [[-half] * 3, [half] * 3]), dtype=torch.float32)
    if aabb.shape != (2, 3) or not torch.isfinite(aabb).all():
        raise SceneError("'aabb' must be [[xmin, ymin, zmin], [xmax, ymax, zmax]]", entries[0][4])
    radius = float((aabb[1] - aabb[0]).norm() / 2)
    dist = (cameras.centers - aabb.mean(0)).norm(dim=-1)
    near_far = torch.stack([(dist - radius).clamp_min(0.05), dist + radius], dim=-1)

    splits: dict[str, list[int]] = {s: [] for s in files}
    for i, e in enumerate(entries):
        splits[e[0]].append(i)
    names = [f"{e[0]}/{e[1].stem}" for e in entries]
    return Scene(
        root=root, format="blender", images=torch.from_numpy(rgb), image_names=names,
        image_paths=[e[1] for e in entries], cameras=cameras, splits=splits, near_far=near_far,
        forward_facing=is_forward_facing(cameras), aabb=aabb, alphas=torch.from_numpy(rgba[..., 3].copy()),
    )
