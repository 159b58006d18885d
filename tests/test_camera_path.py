"""Camera paths for `laser render`: built from the scene's cameras, looking at what they look at."""

from __future__ import annotations

import torch

from laser_gs.data import load_scene
from laser_gs.data.camera_path import focus_point, spiral_path


def _looks_at(cams, target, tol=1e-3):
    to_target = torch.nn.functional.normalize(target - cams.centers, dim=-1)
    return bool(((cams.forward * to_target).sum(-1) > 1 - tol).all())


def test_orbit_around_a_360_scene(lego_dir):
    scene = load_scene(lego_dir)
    assert not scene.forward_facing
    target = focus_point(scene.cameras)
    assert target.norm() < 0.3  # the Blender cameras all look at the origin
    path = spiral_path(scene.cameras, 12, forward_facing=False)
    assert len(path) == 12 and path.width == scene.width
    assert _looks_at(path, target)
    radius = (scene.cameras.centers - target).norm(dim=-1).mean()
    assert torch.allclose((path.centers - target).norm(dim=-1), radius.expand(12), rtol=0.15)
    assert torch.allclose(torch.linalg.det(path.c2w[:, :3, :3]), torch.ones(12), atol=1e-4)


def test_spiral_in_front_of_a_forward_facing_scene(fern_dir):
    scene = load_scene(fern_dir)
    assert scene.forward_facing
    path = spiral_path(scene.cameras, 20)
    target = focus_point(scene.cameras)
    assert _looks_at(path, target)
    spread = (scene.cameras.centers - scene.cameras.centers.mean(0)).norm(dim=-1).max()
    assert ((path.centers - scene.cameras.centers.mean(0)).norm(dim=-1) <= 2 * spread).all()
    # the path views the scene the way the capture did
    assert (path.forward @ scene.cameras.forward.mean(0) > 0.9).all()
    # it moves about as far as the capture did (a spiral, not a point)
    path_spread = (path.centers - path.centers.mean(0)).norm(dim=-1).max()
    assert 0.3 * spread < path_spread <= 2 * spread
