"""COLMAP models (``sparse/0`` in binary or text), read with pycolmap.

Layout (what COLMAP, gsplat, LangSplat and ``laser process`` write)::

    SCENE/images/ or images_N/      the photos (names as in the model)
    SCENE/sparse/0/                 cameras, images, points3D (.bin or .txt)
    SCENE/segmentations/            optional 3D-OVS annotations (as for LLFF scenes)

COLMAP's camera frame is OpenCV's (x right, y down, z forward), as ours. Pinhole models
(PINHOLE, SIMPLE_PINHOLE, and undistorted ones) load directly; distorted models are refused
with the command that undistorts them. Views are recentred and rescaled as LLFF scenes are
(:func:`~laser_gs.data.llff.normalization_transform`); near / far come from the sparse points
each view sees; the points come along (world coordinates of the scene) to start the Gaussians.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from laser_gs.data.cameras import Cameras, is_forward_facing
from laser_gs.data.images import image_size, list_images, read_rgb
from laser_gs.data.llff import frustum_aabb, normalization_transform
from laser_gs.data.scene import Scene
from laser_gs.data.segmentations import read_segmentations
from laser_gs.errors import SceneError

PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")
SPARSE_DIRS = ("sparse/0", "sparse", "colmap/sparse/0")


def sparse_dir(root: Path) -> Path | None:
    """The model folder of a COLMAP scene (``sparse/0``, ``sparse`` or ``colmap/sparse/0``), or None."""
    for rel in SPARSE_DIRS:
        d = Path(root) / rel
        if any((d / f"images{ext}").is_file() for ext in (".bin", ".txt")):
            return d
    return None


def read_model(path: Path):
    """The pycolmap Reconstruction in ``path``; a missing or unreadable file is a :class:`SceneError`."""
    import pycolmap

    for name in ("cameras", "images", "points3D"):
        if not any((path / f"{name}{ext}").is_file() for ext in (".bin", ".txt")):
            raise SceneError(f"COLMAP model without {name}.bin / {name}.txt", path,
                             "a COLMAP sparse model has cameras, images and points3D")
    try:
        return pycolmap.Reconstruction(str(path))
    except Exception as exc:  # noqa: BLE001 - pycolmap raises various errors for damaged models
        raise SceneError(f"cannot read the COLMAP model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                         path, "the model files are damaged or inconsistent; run COLMAP again or `laser process`"
                         ) from None


def _image_folder(root: Path, downscale: int | None) -> tuple[Path, int]:
    """``images_N/`` for ``downscale`` N when present, else ``images/`` (resized on load by the factor)."""
    if downscale and downscale > 1 and (root / f"images_{downscale}").is_dir():
        return root / f"images_{downscale}", 1
    if (root / "images").is_dir():
        return root / "images", downscale or 1
    raise SceneError("no images/ folder beside the COLMAP model", root)


def load_colmap(root: Path, downscale: int | None = None, holdout: int | None = None) -> Scene:
    """Load a COLMAP scene (see the module docstring).

    Args:
        root: the scene folder.
        downscale: read ``images_N/`` or resize ``images/`` by N.
        holdout: every ``holdout``-th view (in name order) is held out for testing (default 8, as LLFF).
    """
    root = Path(root)
    model_dir = sparse_dir(root)
    if model_dir is None:
        raise SceneError("no COLMAP model (sparse/0/images.bin or .txt)", root)
    rec = read_model(model_dir)
    folder, extra = _image_folder(root, downscale)
    present = {f.name: f for f in list_images(folder)}
    entries = sorted(((img.name, img) for img in rec.images.values() if img.has_pose), key=lambda e: e[0])
    if not entries:
        raise SceneError("the COLMAP model registers no image", model_dir)
    missing = [name for name, _ in entries if Path(name).name not in present]
    if missing:
        raise SceneError(f"images listed in the model are absent from {folder.name}/: {missing[:5]}", model_dir,
                         "copy the photos the model was made from into that folder")
    cams = {img.camera_id for _, img in entries}
    for cid in cams:
        cam = rec.cameras[cid]
        if cam.model.name not in PINHOLE_MODELS:
            raise SceneError(
                f"camera {cid} uses the distorted model {cam.model.name}; undistort the photos first: "
                f"`laser process PHOTOS OUT` (or `colmap image_undistorter --image_path {folder} --input_path "
                f"{model_dir} --output_path OUT`)", model_dir)
    files = [present[Path(name).name] for name, _ in entries]
    W0, H0 = image_size(files[0])
    W, H = (W0 // extra, H0 // extra) if extra > 1 else (W0, H0)
    c2w_file, K = [], []
    for _name, img in entries:
        cam = rec.cameras[img.camera_id]
        w2c = np.eye(4)
        w2c[:3, :] = img.cam_from_world().matrix() if callable(img.cam_from_world) else img.cam_from_world.matrix()
        c2w_file.append(np.linalg.inv(w2c)[:3])
        sx, sy = W / cam.width, H / cam.height  # model size -> loaded size
        K.append([[cam.focal_length_x * sx, 0, cam.principal_point_x * sx],
                  [0, cam.focal_length_y * sy, cam.principal_point_y * sy], [0, 0, 1]])
    c2w_file = np.stack(c2w_file)
    pts = np.array([p.xyz for p in rec.points3D.values()]) if rec.num_points3D() else np.zeros((0, 3))
    rgb = np.array([p.color for p in rec.points3D.values()]) / 255.0 if len(pts) else np.zeros((0, 3))
    near_far = _bounds(c2w_file, pts)
    T, scale = normalization_transform(c2w_file, float(near_far[:, 0].min()))
    R = np.einsum("ij,njk->nik", T[:3, :3] / scale, c2w_file[:, :, :3])
    t = np.einsum("ij,nj->ni", T[:3, :3], c2w_file[:, :, 3]) + T[:3, 3]
    c2w = np.tile(np.eye(4), (len(files), 1, 1))
    c2w[:, :3, :3], c2w[:, :3, 3] = R, t
    cameras = Cameras(torch.from_numpy(c2w).float(), torch.tensor(K, dtype=torch.float32), W, H)
    world_pts = torch.from_numpy(pts @ T[:3, :3].T + T[:3, 3]).float()
    near_far_t = torch.from_numpy(near_far * scale).float()
    forward = is_forward_facing(cameras)
    if forward or len(world_pts) < 10:
        aabb = frustum_aabb(cameras, near_far_t)
    else:
        lo, hi = torch.quantile(world_pts, torch.tensor([0.01, 0.99]), dim=0)
        pad = 0.05 * (hi - lo)
        aabb = torch.stack([torch.minimum(lo - pad, cameras.centers.min(0).values),
                            torch.maximum(hi + pad, cameras.centers.max(0).values)])
    names = [f.stem for f in files]
    classes, masks, fmt = [], {}, "colmap"
    if (root / "segmentations").is_dir():
        classes, masks = read_segmentations(root / "segmentations", names, (W, H))
        fmt = "colmap+3dovs"
    holdout = (0 if masks else 8) if holdout is None else holdout
    test = [i for i in range(len(files)) if holdout > 0 and i % holdout == 0]
    images = torch.from_numpy(np.stack([read_rgb(f, (W, H)) for f in files]))
    return Scene(root=root, format=fmt, images=images, image_names=names, image_paths=files, cameras=cameras,
                 splits={"train": [i for i in range(len(files)) if i not in set(test)], "test": test},
                 near_far=near_far_t, forward_facing=forward, aabb=aabb.float(),
                 world_from_file=torch.from_numpy(T).float(), classes=classes, gt_masks=masks,
                 feature_dir=root / "features" if (root / "features").is_dir() else None,
                 points=world_pts, point_colors=torch.from_numpy(rgb).float())


def _bounds(c2w: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """``[N, 2]`` near / far depth per view: the 0.5 / 99.5 % depths of the sparse points in front of it."""
    out = np.zeros((len(c2w), 2))
    for i, m in enumerate(c2w):
        depth = (pts - m[:, 3]) @ m[:, 2] if len(pts) else np.zeros(0)
        depth = depth[depth > 1e-6]
        if len(depth) < 8:
            out[i] = (0.1, 100.0)
        else:
            out[i] = (np.percentile(depth, 0.5) * 0.8, np.percentile(depth, 99.5) * 1.2)
    out[:, 0] = np.maximum(out[:, 0], 1e-3)
    return out
