"""LLFF scenes (``poses_bounds.npy`` + ``images*/``) and the 3D-OVS layout on top of them.

``poses_bounds.npy`` is ``[N, 17]``: a row-major ``3x5`` matrix per view whose
first four columns are the camera-to-world pose with axes [down, right, back]
and whose fifth column is ``(H, W, focal)`` of the full-resolution images,
followed by the near and far scene depth of that view.

Processing follows LLFF/NeRF/TensoRF so that numbers stay comparable: the
scene is rescaled so that the nearest depth is 1/0.75 and recentred on the
average pose. The similarity applied is kept on the scene
(``Scene.world_from_file``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from laser_gs.data.cameras import Cameras, is_forward_facing
from laser_gs.data.images import image_size, list_images, read_rgb
from laser_gs.data.scene import Scene
from laser_gs.data.segmentations import read_segmentations
from laser_gs.errors import SceneError

POSES_FILE = "poses_bounds.npy"


def _image_folder(root: Path, downscale: int | None) -> tuple[Path, int]:
    """Pick the folder to read and the extra resize factor to apply after reading.

    ``downscale=None`` takes ``images/`` as is, or else the least-downscaled
    ``images_N/``. ``downscale=N`` takes ``images_N/`` if present, else resizes
    ``images/`` (or an ``images_M/`` with M dividing N) by the remaining factor.
    """
    folders = {}
    if (root / "images").is_dir():
        folders[1] = root / "images"
    for p in root.iterdir():
        m = re.fullmatch(r"images_(\d+)", p.name)
        if m and p.is_dir():
            folders[int(m.group(1))] = p
    if not folders:
        raise SceneError("no images/ or images_N/ folder", root,
                         "an LLFF scene needs its photos in images/ next to poses_bounds.npy")
    if downscale is None:
        factor = min(folders)
        return folders[factor], 1
    if downscale < 1:
        raise SceneError(f"--downscale must be >= 1, got {downscale}", root)
    if downscale in folders:
        return folders[downscale], 1
    divisors = [m for m in folders if downscale % m == 0]
    if not divisors:
        raise SceneError(f"cannot make 1/{downscale} resolution from {sorted(folders)}", root,
                         "add images/ at full resolution or pick a downscale available as images_N/")
    m = max(divisors)
    return folders[m], downscale // m


def read_poses_bounds(path: Path) -> np.ndarray:
    """``[N, 17]`` float64 array from ``poses_bounds.npy``, validated."""
    if not path.is_file():
        raise SceneError("poses file not found", path, "an LLFF scene needs poses_bounds.npy")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception:  # numpy raises several types, with advice (allow_pickle) that does not apply here
        raise SceneError("not a readable numeric .npy array (damaged, truncated or pickled)", path,
                         "write it again with your pose tool, e.g. LLFF's imgs2poses.py or COLMAP") from None
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise SceneError(f"expected an [N, 17] array, got shape {list(arr.shape)}", path)
    for cols, what in ((slice(0, 15), "camera poses (columns 0-14)"),
                       (slice(15, 17), "near/far bounds (columns 15-16)")):
        part = arr[:, cols]
        if not np.isfinite(part).all():
            bad = sorted(set(np.nonzero(~np.isfinite(part))[0].tolist()))
            raise SceneError(f"non-finite values (NaN or Inf) in the {what} of views {bad[:10]}", path,
                             "fix or remove those rows (one row per image, in sorted file order)")
    return arr.astype(np.float64)


def llff_to_opencv(poses: np.ndarray) -> np.ndarray:
    """``[N, 3, 4]`` LLFF [down, right, back] poses -> ``[N, 3, 4]`` OpenCV [right, down, forward]."""
    return np.concatenate([poses[:, :, 1:2], poses[:, :, 0:1], -poses[:, :, 2:3], poses[:, :, 3:4]], axis=2)


def opencv_to_llff(c2w: np.ndarray) -> np.ndarray:
    """Inverse of :func:`llff_to_opencv`: ``[N, 3, 4]`` -> ``[N, 3, 4]``."""
    return np.concatenate([c2w[:, :, 1:2], c2w[:, :, 0:1], -c2w[:, :, 2:3], c2w[:, :, 3:4]], axis=2)


def normalization_transform(c2w: np.ndarray, near_min: float) -> tuple[np.ndarray, float]:
    """Similarity (4x4) that rescales to nearest depth 1/0.75 and recentres on the mean pose.

    Args:
        c2w: ``[N, 3, 4]`` OpenCV poses in file coordinates.
        near_min: smallest near bound in file units.

    Returns:
        ``world_from_file`` 4x4 and the scale factor it contains.
    """
    scale = 1.0 / (near_min * 0.75)
    center = c2w[:, :, 3].mean(axis=0) * scale
    fwd = c2w[:, :, 2].sum(axis=0)
    fwd /= np.linalg.norm(fwd)
    down = c2w[:, :, 1].sum(axis=0)
    right = np.cross(down, fwd)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R_avg = np.stack([right, down, fwd], axis=1)
    T = np.eye(4)
    T[:3, :3] = R_avg.T * scale
    T[:3, 3] = -R_avg.T @ center
    return T, scale


def frustum_aabb(cameras: Cameras, near_far: torch.Tensor) -> torch.Tensor:
    """``[2, 3]`` box around all view frusta between their near and far depths."""
    w, h = cameras.width, cameras.height
    corners_pix = torch.tensor([[0, 0], [w, 0], [0, h], [w, h]], dtype=torch.float32)
    pts = []
    for depth_col in (0, 1):
        d = near_far[:, depth_col]  # [N]
        x = (corners_pix[None, :, 0] - cameras.K[:, None, 0, 2]) / cameras.K[:, None, 0, 0]
        y = (corners_pix[None, :, 1] - cameras.K[:, None, 1, 2]) / cameras.K[:, None, 1, 1]
        cam = torch.stack([x, y, torch.ones_like(x)], dim=-1) * d[:, None, None]
        world = torch.einsum("nij,nkj->nki", cameras.c2w[:, :3, :3], cam) + cameras.c2w[:, None, :3, 3]
        pts.append(world.reshape(-1, 3))
    allp = torch.cat(pts)
    return torch.stack([allp.min(0).values, allp.max(0).values])


def load_llff(root: Path, downscale: int | None = None, holdout: int | None = None,
              with_segmentations: bool = True) -> Scene:
    """Load an LLFF scene, and its 3D-OVS ``segmentations/`` when present.

    Args:
        root: folder with ``poses_bounds.npy`` and ``images/`` or ``images_N/``.
        downscale: image downscale factor (``--downscale``); None keeps the
            least-downscaled folder present.
        holdout: every ``holdout``-th view (starting at 0) goes to the test
            split; 0 keeps all views for training. Defaults to 8 (LLFF
            convention) for plain LLFF and 0 for the 3D-OVS layout, whose
            protocol evaluates on annotated training views.
        with_segmentations: read ``segmentations/`` if present.
    """
    root = Path(root)
    arr = read_poses_bounds(root / POSES_FILE)
    folder, extra = _image_folder(root, downscale)
    files = list_images(folder)
    if not files:
        raise SceneError("image folder has no images", folder)
    if len(files) != arr.shape[0]:
        raise SceneError(
            f"{arr.shape[0]} poses but {len(files)} images in {folder.name}/", root / POSES_FILE,
            "poses_bounds.npy needs one row per image, in sorted file-name order")

    sizes = [image_size(f) for f in files]
    W0, H0 = sizes[0]
    for f, s in zip(files, sizes):
        if s != (W0, H0):
            raise SceneError(f"image is {s[0]}x{s[1]} but {files[0].name} is {W0}x{H0}", f,
                             "all images of a scene must have the same size")
    W, H = (W0 // extra, H0 // extra) if extra > 1 else (W0, H0)

    poses = arr[:, :15].reshape(-1, 3, 5)
    bounds = arr[:, 15:17]
    H_full, W_full, f_full = poses[0, :, 4]
    if W_full <= 0 or H_full <= 0 or f_full <= 0:
        raise SceneError(f"invalid (H, W, focal) column {poses[0, :, 4].tolist()}", root / POSES_FILE)
    if abs(W / H - W_full / H_full) > 0.02 * (W_full / H_full):
        raise SceneError(f"images in {folder.name}/ are {W}x{H} but the poses are for {W_full:.0f}x{H_full:.0f}",
                         folder, "images and poses_bounds.npy must describe the same photos")
    if (bounds <= 0).any():
        raise SceneError("near/far bounds must be positive", root / POSES_FILE)

    c2w_file = llff_to_opencv(poses[:, :, :4])
    T, scale = normalization_transform(c2w_file, float(bounds.min()))
    R = np.einsum("ij,njk->nik", T[:3, :3] / scale, c2w_file[:, :, :3])
    t = np.einsum("ij,nj->ni", T[:3, :3], c2w_file[:, :, 3]) + T[:3, 3]
    c2w = np.tile(np.eye(4), (len(files), 1, 1))
    c2w[:, :3, :3], c2w[:, :3, 3] = R, t

    s = W / W_full
    fx = fy = f_full * s
    K = torch.tensor([[fx, 0, W / 2], [0, fy, H / 2], [0, 0, 1]], dtype=torch.float32).expand(len(files), 3, 3)
    cameras = Cameras(torch.from_numpy(c2w).float(), K.clone(), W, H)

    images = torch.from_numpy(np.stack([read_rgb(f, (W, H)) for f in files]))
    near_far = torch.from_numpy(bounds * scale).float()

    seg_dir = root / "segmentations"
    classes: list[str] = []
    masks: dict[int, torch.Tensor] = {}
    fmt = "llff"
    if with_segmentations and seg_dir.is_dir():
        classes, masks = read_segmentations(seg_dir, [f.stem for f in files], (W, H))
        fmt = "3dovs"
    if holdout is None:
        holdout = 0 if fmt == "3dovs" else 8
    n = len(files)
    test = [i for i in range(n) if holdout > 0 and i % holdout == 0]
    train = [i for i in range(n) if i not in set(test)]
    splits = {"train": train, "test": test}

    feature_dir = root / "features"
    return Scene(
        root=root, format=fmt, images=images, image_names=[f.stem for f in files], image_paths=files,
        cameras=cameras, splits=splits, near_far=near_far, forward_facing=is_forward_facing(cameras),
        aabb=frustum_aabb(cameras, near_far), world_from_file=torch.from_numpy(T).float(),
        classes=classes, gt_masks=masks, feature_dir=feature_dir if feature_dir.is_dir() else None,
    )
