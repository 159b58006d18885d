"""COLMAP scenes: a generated scene written as a COLMAP model (binary and text) loads with the same cameras;
damaged models give one-line errors naming the file; `laser process` poses real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from laser_gs.data import detect_format, load_scene
from laser_gs.errors import SceneError
from laser_gs_cli.main import laser


def write_colmap(scene_dir: Path, out: Path, binary: bool = True, model: str = "PINHOLE") -> Path:
    """The generated scene at ``scene_dir`` as a COLMAP scene: images/ and sparse/0 (written with pycolmap)."""
    import pycolmap

    src = load_scene(scene_dir)
    T = src.world_from_file.double().numpy()  # scene coords = T @ file coords; write file coordinates
    out.mkdir(parents=True)
    shutil.copytree(scene_dir / "images", out / "images")
    rec = pycolmap.Reconstruction()
    K = src.cameras.K[0].double().numpy()
    params = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]] if model == "PINHOLE" else [K[0, 0], K[0, 2], K[1, 2], 0.01]
    cam = pycolmap.Camera(model=model, width=src.width, height=src.height, params=params, camera_id=1)
    rec.add_camera_with_trivial_rig(cam)
    Tinv = np.linalg.inv(T)
    for i, (_name, path) in enumerate(zip(src.image_names, src.image_paths), start=1):
        c2w = Tinv @ src.cameras.c2w[i - 1].double().numpy()
        c2w[:3, :3] /= np.linalg.norm(c2w[:3, 0])  # the similarity's scale out of the rotation
        w2c = np.linalg.inv(c2w)
        img = pycolmap.Image(name=path.name, camera_id=1, image_id=i)
        rec.add_image_with_trivial_frame(img, pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[:3, :3]), w2c[:3, 3]))
    g = np.random.default_rng(0)
    for _ in range(300):  # points in front of the cameras, for near / far
        c2w = Tinv @ src.cameras.c2w[0].double().numpy()
        rec.add_point3D(c2w[:3, 3] + c2w[:3, :3] @ np.array([*g.uniform(-1, 1, 2), g.uniform(3, 7)]),
                        pycolmap.Track(), np.array([120, 120, 120], dtype=np.uint8))
    (out / "sparse" / "0").mkdir(parents=True)
    (rec.write_binary if binary else rec.write_text)(str(out / "sparse" / "0"))
    return out


@pytest.mark.parametrize("binary", [True, False])
def test_a_scene_written_as_colmap_loads_with_the_same_cameras(generated, tmp_path, binary):
    scene_dir = generated[0]
    path = write_colmap(scene_dir, tmp_path / "colmap", binary)
    assert detect_format(path) == "colmap"
    a, b = load_scene(scene_dir), load_scene(path)
    assert b.format == "colmap" and b.num_views == a.num_views and b.image_names == a.image_names
    assert torch.allclose(a.cameras.K, b.cameras.K, atol=1e-4)
    # the same cameras in file coordinates (each loader recentres and rescales on its own)
    fa = torch.linalg.inv(a.world_from_file.double()) @ a.cameras.c2w.double()
    fb = torch.linalg.inv(b.world_from_file.double()) @ b.cameras.c2w.double()
    assert torch.allclose(fa[:, :3, 3], fb[:, :3, 3], atol=1e-5)
    ra = fa[:, :3, :3] / fa[:, :3, :3].norm(dim=1, keepdim=True)
    rb = fb[:, :3, :3] / fb[:, :3, :3].norm(dim=1, keepdim=True)
    assert torch.allclose(ra, rb, atol=1e-5)
    assert b.points is not None and b.points.shape == (300, 3) and b.forward_facing


def test_damaged_or_incomplete_models_are_one_line_errors(generated, tmp_path):
    path = write_colmap(generated[0], tmp_path / "c")
    (path / "sparse" / "0" / "images.bin").unlink()
    res = CliRunner().invoke(laser, ["inspect", str(path)])
    assert res.exit_code == 2 and "sparse" in res.output and res.output.count("\n") == 1
    path = write_colmap(generated[0], tmp_path / "d")
    first = sorted((path / "images").iterdir())[0]
    first.unlink()
    with pytest.raises(SceneError, match=f"absent from images/.*{first.name}"):
        load_scene(path)
    path = write_colmap(generated[0], tmp_path / "e", model="SIMPLE_RADIAL")
    with pytest.raises(SceneError, match="distorted model SIMPLE_RADIAL.*laser process"):
        load_scene(path)
    path = write_colmap(generated[0], tmp_path / "f")
    (path / "sparse" / "0" / "cameras.bin").write_bytes(b"garbage")
    with pytest.raises(SceneError, match="cameras.bin|cannot read the COLMAP model"):
        load_scene(path)


def test_colmap_points_start_the_gaussians(generated, tmp_path):
    from laser_gs.backends.gsplat.model import initial_points
    from laser_gs.backends.registry import get_backend
    from laser_gs.training.settings import TrainingSettings

    scene = load_scene(write_colmap(generated[0], tmp_path / "c"))
    backend = get_backend("gsplat")()
    backend.settings = TrainingSettings.resolve(get_backend("gsplat"), "fast")  # init_from = auto
    pts, cols = initial_points(scene, 1000, torch.Generator().manual_seed(0), backend.sparse_points(scene))
    assert pts.shape == (1000, 3) and torch.equal(pts[:300], scene.points)


def _umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) with dst ~ s R src + t (least squares)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(xd.T @ xs / len(src))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / xs.var(0).sum()
    return s, R, mu_d - s * R @ mu_s


def test_process_poses_the_fern_photos_like_their_llff_poses(fern_dir, tmp_path):
    """`laser process` on the 20 fern photos: all registered; after a similarity alignment the camera centres
    agree with poses_bounds.npy within 2 % of the scene extent and the rotations within 2 degrees."""
    import pycolmap

    from laser_gs.data.llff import llff_to_opencv, read_poses_bounds

    out = tmp_path / "fern"
    res = CliRunner().invoke(laser, ["process", str(fern_dir / "images_8"), str(out)])
    assert res.exit_code == 0, res.output
    assert "Posed 20 of 20 photos" in res.output
    rec = pycolmap.Reconstruction(str(out / "sparse" / "0"))
    images = sorted(rec.images.values(), key=lambda im: im.name)
    c2w = [np.linalg.inv(np.vstack([im.cam_from_world().matrix(), [0, 0, 0, 1]])) for im in images]
    centres = np.stack([m[:3, 3] for m in c2w])
    ref = llff_to_opencv(read_poses_bounds(fern_dir / "poses_bounds.npy")[:, :15].reshape(-1, 3, 5)[:, :, :4])
    s, R, t = _umeyama(centres, ref[:, :, 3])
    aligned = s * centres @ R.T + t
    extent = np.linalg.norm(ref[:, :, 3].max(0) - ref[:, :, 3].min(0))
    assert np.linalg.norm(aligned - ref[:, :, 3], axis=1).max() / extent < 0.02
    for m, r in zip(c2w, ref):
        rel = (R @ m[:3, :3]).T @ r[:, :3]
        angle = np.degrees(np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1)))
        assert angle < 2.0, angle
    scene = load_scene(out)
    assert scene.num_views == 20 and scene.forward_facing and scene.points is not None


def test_process_refuses_too_few_photos_and_video(tmp_path):
    (tmp_path / "p").mkdir()
    res = CliRunner().invoke(laser, ["process", str(tmp_path / "p"), str(tmp_path / "o")])
    assert res.exit_code == 2 and "found 0 photos" in res.output and not (tmp_path / "o").exists()
    res = CliRunner().invoke(laser, ["process", str(tmp_path / "p"), str(tmp_path / "o"), "--video", "clip.mp4"])
    assert res.exit_code == 2 and "ffmpeg" in res.output
