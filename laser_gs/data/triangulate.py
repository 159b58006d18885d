"""Sparse points for scenes that ship none: SIFT matches triangulated with the scene's known, fixed poses.

LLFF, 3D-OVS, Blender and generated scenes come with poses but no structure-from-motion points, so
Gaussians would start at random. Here pycolmap extracts and matches SIFT features of the training views (at
the loaded resolution, so the cameras apply as they are) and triangulates them with the given cameras
(COLMAP's point triangulator: no pose or intrinsics refinement). The result is cached beside the scene
(``SCENE/laser_cache/``, or the user cache when the scene folder is read-only), in the file's world
coordinates so any normalisation of the scene applies to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from torch import Tensor

from laser_gs.atomic import atomic_open
from laser_gs.data.scene import Scene

MIN_POINTS = 50  # fewer sparse points than this: not worth seeding from (the Gaussians start at random)
MAX_REPROJ_PX = 1.0  # points whose mean reprojection error is larger are dropped
MIN_TRACK = 3  # views a point must be seen in: two-view matches on repetitive texture are often wrong
MIN_SIDE = 480  # images are upsampled until their longer side is at least this, so small ones yield SIFT
PEAK_THRESHOLD = 0.004  # SIFT's contrast threshold (pycolmap's default 0.0067 finds few on smooth renders)
EXHAUSTIVE_MAX = 100  # views up to which every pair is matched (sequential beyond)
VERSION = 1  # bump when the procedure changes, so old caches are recomputed


@dataclass
class TriangulatedPoints:
    """Points triangulated from a scene's posed views.

    Attributes:
        xyz: ``[P, 3]`` positions in the scene's (normalised) world.
        rgb: ``[P, 3]`` colours in [0, 1].
        info: count, views used, mean reprojection error (px), seconds, cache file.
    """

    xyz: Tensor
    rgb: Tensor
    info: dict


def cache_file(scene: Scene, views: list[int]) -> Path:
    """Where the points of ``scene`` triangulated from ``views`` are cached: ``SCENE/laser_cache/`` when the
    folder is writable, else ``$LASER_CACHE_DIR`` or ``~/.cache/laser_gs``. The name hashes what the result
    depends on (views, their cameras and names, the resolution), so a changed scene is triangulated anew."""
    h = hashlib.sha1(f"v{VERSION}".encode())
    h.update(json.dumps([scene.image_names[v] for v in views]).encode())
    h.update(np.round(scene.cameras.c2w[views].numpy().astype(np.float64), 5).tobytes())
    h.update(np.round(scene.cameras.K[views].numpy().astype(np.float64), 3).tobytes())
    h.update(f"{scene.cameras.width}x{scene.cameras.height}".encode())
    name = f"triangulated_{h.hexdigest()[:16]}.npz"
    env = os.environ.get("LASER_CACHE_DIR")
    if env:
        return Path(env) / "triangulated" / _slug(scene.root) / name
    if os.access(scene.root, os.W_OK):
        return Path(scene.root) / "laser_cache" / name
    return Path.home() / ".cache" / "laser_gs" / "triangulated" / _slug(scene.root) / name


def _slug(root: Path) -> str:
    root = Path(root).resolve()
    return f"{root.name}-{hashlib.sha1(str(root).encode()).hexdigest()[:8]}"


def load_cached(scene: Scene, views: list[int] | None = None) -> TriangulatedPoints | None:
    """The cached triangulation of ``scene`` (default views: its training split), or None."""
    views = list(scene.splits["train"]) if views is None else list(views)
    path = cache_file(scene, views)
    if not path.is_file():
        return None
    with np.load(path) as data:
        xyz_file, rgb = data["xyz"], data["rgb"]
        info = json.loads(str(data["info"]))
    T = scene.world_from_file.double().numpy()
    xyz = xyz_file @ T[:3, :3].T + T[:3, 3]
    return TriangulatedPoints(torch.from_numpy(xyz).float(), torch.from_numpy(rgb).float(),
                              {**info, "cache": str(path)})


def triangulate(scene: Scene, views: list[int] | None = None, console: Console | None = None
                ) -> TriangulatedPoints:
    """Triangulate SIFT matches of ``views`` (default: the training split) with the scene's cameras; cached
    (see :func:`cache_file`), so a second call returns at once."""
    import pycolmap

    from laser_gs.progress import stderr_console

    views = list(scene.splits["train"]) if views is None else list(views)
    cached = load_cached(scene, views)
    if cached is not None:
        return cached
    console = console or stderr_console()
    pycolmap.logging.minloglevel = 2  # errors only: the phases below say what happens
    pycolmap.set_random_seed(0)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="laser_triangulate_"))
    try:
        up, names = _write_views(scene, views, work / "images")
        _match(work / "database.db", work / "images", names, console)
        rec = _known_poses(scene, views, names, up, work / "database.db")
        xyz, rgb, errors = _triangulated(rec, work, up, console)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = {"points": len(xyz), "views": len(views),
            "mean_reprojection_error_px": float(np.mean(errors)) if len(xyz) else None,
            "seconds": round(time.perf_counter() - t0, 2)}
    T_inv = torch.linalg.inv(scene.world_from_file.double()).numpy()
    path = cache_file(scene, views)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        np.savez(f, xyz=xyz @ T_inv[:3, :3].T + T_inv[:3, 3], rgb=rgb, info=json.dumps(info))
    return TriangulatedPoints(torch.from_numpy(xyz).float(), torch.from_numpy(rgb).float(),
                              {**info, "cache": str(path)})


def _write_views(scene: Scene, views: list[int], folder: Path) -> tuple[int, dict[int, str]]:
    """The loaded images of ``views`` (the cameras hold for exactly these pixels) as PNG, upsampled by the
    integer factor ``up`` that brings the longer side to ``MIN_SIDE`` (integer, so pixel centres map
    exactly: ``x -> up * x``). Returns ``(up, view -> file name)``."""
    from laser_gs.data.images import write_png

    folder.mkdir(parents=True)
    cam = scene.cameras
    up = max(1, -(-MIN_SIDE // max(cam.width, cam.height)))
    names = {}
    for v in views:
        names[v] = f"{v:05d}.png"
        img = scene.images[v]
        if up > 1:
            img = torch.nn.functional.interpolate(img.permute(2, 0, 1)[None], scale_factor=up, mode="bicubic",
                                                  align_corners=False)[0].permute(1, 2, 0)
        write_png(folder / names[v], img.clamp(0, 1).numpy())
    return up, names


def _match(db: Path, images: Path, names: dict[int, str], console: Console) -> None:
    """SIFT features and verified matches into the database ``db``. Seeded RANSAC and one thread throughout:
    the same scene gives the same points run after run (with worker threads it did not)."""
    import pycolmap

    from laser_gs.progress import phase

    with phase(console, f"triangulating: SIFT features of {len(names)} views"):
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.sift.peak_threshold = PEAK_THRESHOLD
        extraction.num_threads = 1
        pycolmap.extract_features(db, images, image_names=list(names.values()),
                                  camera_mode=pycolmap.CameraMode.PER_IMAGE, reader_options=reader,
                                  extraction_options=extraction, device=pycolmap.Device.cpu)
    with phase(console, "triangulating: matching"):
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = 1
        verification = pycolmap.TwoViewGeometryOptions()
        verification.ransac.random_seed = 0
        (pycolmap.match_exhaustive if len(names) <= EXHAUSTIVE_MAX else pycolmap.match_sequential)(
            db, matching_options=matching, verification_options=verification)


def _known_poses(scene: Scene, views: list[int], names: dict[int, str], up: int, db: Path):
    """A pycolmap Reconstruction holding our cameras (intrinsics in the upsampled pixels, poses fixed), with
    the database's image and camera ids; the database's cameras get the true intrinsics too, for the
    geometric verification."""
    import pycolmap

    cam = scene.cameras
    rec = pycolmap.Reconstruction()
    database = pycolmap.Database.open(db)
    try:
        by_name = {im.name: im for im in database.read_all_images()}
        for v in views:
            im = by_name[names[v]]
            K = cam.K[v].double().numpy() * up
            camera = pycolmap.Camera(model="PINHOLE", width=cam.width * up, height=cam.height * up,
                                     params=[K[0, 0], K[1, 1], K[0, 2], K[1, 2]], camera_id=im.camera_id)
            database.update_camera(camera)
            rec.add_camera_with_trivial_rig(camera)
            w2c = torch.linalg.inv(cam.c2w[v].double()).numpy()
            rec.add_image_with_trivial_frame(pycolmap.Image(name=im.name, camera_id=im.camera_id,
                                                            image_id=im.image_id), pycolmap.Rigid3d(w2c[:3]))
    finally:
        database.close()
    return rec


def _triangulated(rec, work: Path, up: int, console: Console) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """COLMAP's point triangulator on ``rec`` (poses and intrinsics fixed); ``([P, 3] xyz, [P, 3] rgb in
    [0, 1], reprojection errors in original pixels)`` of the points in >= ``MIN_TRACK`` views and within
    ``MAX_REPROJ_PX``."""
    import pycolmap

    from laser_gs.progress import phase

    with phase(console, "triangulating: points from the known poses"):
        (work / "sparse").mkdir()
        options = pycolmap.IncrementalPipelineOptions()
        options.random_seed = 0
        options.num_threads = 1
        options.triangulation.random_seed = 0
        rec = pycolmap.triangulate_points(rec, work / "database.db", work / "images", work / "sparse",
                                          options=options)
    keep = [p for p in rec.points3D.values() if p.error <= MAX_REPROJ_PX * up and p.track.length() >= MIN_TRACK]
    xyz = np.array([p.xyz for p in keep]).reshape(-1, 3)
    rgb = np.array([p.color for p in keep]).reshape(-1, 3) / 255.0
    return xyz, rgb, [p.error / up for p in keep]
