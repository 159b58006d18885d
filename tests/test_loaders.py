"""Loaders on the shared real data and on generated scenes; pose conventions checked by reprojection."""

import numpy as np
import torch

from laser_gs.data import detect_format, load_scene


def test_fern_llff(fern_dir):
    scene = load_scene(fern_dir)
    assert scene.format == "llff"
    assert scene.images.shape == (20, 378, 504, 3)
    assert scene.images.dtype == torch.float32 and 0 <= scene.images.min() and scene.images.max() <= 1
    # Focal of the 4032-px originals scaled to the 504-px images.
    raw = np.load(fern_dir / "poses_bounds.npy")
    f_full = raw[0, 14]
    assert torch.allclose(scene.cameras.K[:, 0, 0], torch.tensor(f_full * 504 / raw[0, 9], dtype=torch.float32))
    assert scene.forward_facing
    assert scene.splits["test"] == [0, 8, 16] and len(scene.splits["train"]) == 17
    # LLFF rescaling: the nearest depth becomes 1/0.75.
    assert abs(float(scene.near_far.min()) - 1 / 0.75) < 1e-4
    # Rotations stay orthonormal and right-handed after recentring.
    R = scene.cameras.c2w[:, :3, :3]
    assert torch.allclose(R.transpose(1, 2) @ R, torch.eye(3).expand(20, 3, 3), atol=1e-4)
    assert torch.allclose(torch.linalg.det(R), torch.ones(20), atol=1e-4)


def test_fern_cameras_see_a_common_point(fern_dir):
    """A point at mid depth in front of view 0 must be in front of, and inside, every other view."""
    scene = load_scene(fern_dir)
    cams = scene.cameras
    depth = float(scene.near_far[:, 0].mean() * 2)
    point = cams.centers[0] + depth * cams.forward[0]
    uv, z = cams.project(point[None])
    assert (z > 0).all()
    assert ((uv[:, 0, 0] > 0) & (uv[:, 0, 0] < 504) & (uv[:, 0, 1] > 0) & (uv[:, 0, 1] < 378)).all()


def test_fern_downscale_from_existing_folder(fern_dir):
    scene = load_scene(fern_dir, downscale=16)  # images_8 resized by 2
    assert (scene.width, scene.height) == (252, 189)
    full = load_scene(fern_dir)
    assert torch.allclose(scene.cameras.K[0, 0, 0] * 2, full.cameras.K[0, 0, 0])


def test_lego_blender(lego_dir):
    scene = load_scene(lego_dir)
    assert detect_format(lego_dir) == "blender"
    assert len(scene.splits["train"]) == 100 and len(scene.splits["val"]) == 10 and len(scene.splits["test"]) == 20
    assert (scene.width, scene.height) == (200, 200)
    assert not scene.forward_facing
    assert scene.alphas is not None and scene.alphas.shape == (130, 200, 200)
    # White background where alpha is 0.
    bg = scene.alphas[0] == 0
    assert torch.allclose(scene.images[0][bg], torch.ones(1, 3), atol=1e-6)


def test_lego_pose_convention_by_reprojection(lego_dir):
    """The model sits at the origin: it must project in front of every camera and onto the object mask."""
    scene = load_scene(lego_dir)
    uv, depth = scene.cameras.project(torch.zeros(1, 3))
    assert (depth > 0).all()
    px = uv[:, 0].floor().long()
    alpha_at = scene.alphas[torch.arange(130), px[:, 1].clamp(0, 199), px[:, 0].clamp(0, 199)]
    assert (alpha_at > 0.5).float().mean() > 0.9


def test_generated_scene_loads_as_3dovs(generated, small_spec):
    path, gen = generated
    scene = load_scene(path)
    assert scene.format == "3dovs"
    assert scene.num_views == small_spec.views
    assert (scene.width, scene.height) == (small_spec.width, small_spec.height)
    assert scene.classes == gen.classes
    assert scene.annotated_views == gen.annotated
    assert scene.splits["test"] == []  # 3D-OVS protocol: annotated views are training views
    assert scene.feature_dir is not None
    # Written images match the render up to 8-bit quantisation.
    assert (scene.images - gen.images).abs().max() <= 1 / 255 + 1e-6


def test_masks_match_label_maps(generated):
    path, gen = generated
    scene = load_scene(path)
    for v in scene.annotated_views:
        assert torch.equal(scene.gt_label_map(v), gen.labels[v])
        assert torch.equal(scene.gt_masks[v].sum(0), torch.ones_like(gen.labels[v]))


def test_generated_poses_by_reprojection(generated):
    """Surface points seen in one annotated view land, in the others, on pixels of the same class.

    Points come from the generator's own depth and cameras (file coordinates);
    they are mapped through the loader's normalisation and projected with the
    loaded cameras, so a wrong axis convention, focal or recentring fails.
    """
    path, gen = generated
    scene = load_scene(path)
    T = scene.world_from_file
    scale = float(torch.linalg.det(T[:3, :3]) ** (1 / 3))
    H, W = scene.height, scene.width
    views = scene.annotated_views
    checked = agree = 0
    for a in views:
        o, d = gen.cameras.pixel_rays(a)
        z = gen.depth[a]
        t = z / (d @ gen.cameras.forward[a])
        pts_file = (o + d * t[..., None])[::4, ::4].reshape(-1, 3)
        labels_a = gen.labels[a][::4, ::4].reshape(-1)
        pts = pts_file @ T[:3, :3].T + T[:3, 3]
        for b in views:
            if b == a:
                continue
            uv, depth = scene.cameras[b].project(pts)
            uv, depth = uv[0], depth[0]
            px = uv.floor().long()
            inside = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H) & (depth > 0)
            px = px[inside]
            visible = (gen.depth[b][px[:, 1], px[:, 0]] * scale - depth[inside]).abs() < 0.01 * depth[inside]
            lab_b = scene.gt_label_map(b)[px[:, 1], px[:, 0]]
            checked += int(visible.sum())
            agree += int((lab_b[visible] == labels_a[inside][visible]).sum())
    assert checked > 500
    assert agree / checked > 0.97


def test_generation_is_deterministic(small_spec):
    from laser_gs.synthetic import render_scene

    a, b = render_scene(small_spec), render_scene(small_spec)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
