"""nerfstudio / instant-ngp transforms.json: global and per-frame intrinsics, missing frames skipped with a
warning, distortion refused; the same cameras as the scene it was written from."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from laser_gs.data import load_scene
from laser_gs.errors import SceneError


def _write(generated, out, drop: int | None = None, distortion: float = 0.0):
    src = load_scene(generated[0])
    out.mkdir()
    shutil.copytree(generated[0] / "images", out / "images")
    K = src.cameras.K[0]
    frames = []
    for i, path in enumerate(src.image_paths):
        gl = src.cameras.c2w[i].double().numpy().copy()
        gl[:3, 1:3] *= -1  # OpenCV -> OpenGL
        frame = {"file_path": f"images/{path.name}", "transform_matrix": gl.tolist()}
        if i == 1:  # per-frame intrinsics override the global ones
            frame.update(fl_x=float(K[0, 0]) * 1.1, fl_y=float(K[1, 1]) * 1.1)
        frames.append(frame)
    if drop is not None:
        (out / "images" / src.image_paths[drop].name).unlink()
    meta = {"fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
            "w": src.width, "h": src.height, "k1": distortion, "k2": 0.0, "p1": 0.0, "p2": 0.0, "aabb_scale": 4,
            "frames": frames}
    (out / "transforms.json").write_text(json.dumps(meta))
    return src


def test_nerfstudio_transforms_load_with_per_frame_intrinsics(generated, tmp_path):
    src = _write(generated, tmp_path / "ns")
    scene = load_scene(tmp_path / "ns")
    assert scene.format == "blender" and scene.num_views == src.num_views
    assert torch.allclose(scene.cameras.c2w, src.cameras.c2w, atol=1e-5)
    assert torch.allclose(scene.cameras.K[0], src.cameras.K[0], atol=1e-4)
    assert torch.isclose(scene.cameras.K[1, 0, 0], src.cameras.K[1, 0, 0] * 1.1, atol=1e-3)
    assert torch.allclose(scene.aabb, torch.tensor([[-6.0] * 3, [6.0] * 3]))  # 1.5 x aabb_scale


def test_frames_without_images_are_skipped_with_a_warning(generated, tmp_path, capsys):
    src = _write(generated, tmp_path / "ns", drop=3)
    scene = load_scene(tmp_path / "ns")
    assert scene.num_views == src.num_views - 1
    assert "1 frame(s) without their image were skipped" in " ".join(capsys.readouterr().err.split())


def test_distorted_cameras_are_refused(generated, tmp_path):
    _write(generated, tmp_path / "ns", distortion=0.05)
    with pytest.raises(SceneError, match="distorted camera.*k1=0.05.*undistort"):
        load_scene(tmp_path / "ns")
