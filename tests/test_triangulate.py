"""Sparse points for scenes without any: triangulated from the posed views (pycolmap), checked against the
generated scene's analytic geometry, cached, and used to seed gsplat's Gaussians."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from laser_gs.data import load_scene
from laser_gs.data import triangulate as tri


def _distance_to_surfaces(spec, scene, xyz: torch.Tensor) -> torch.Tensor:
    """``[P]`` relative distance of each point to the generated scene's surfaces: from every camera, trace the
    analytic scene along the ray through the point and compare the hit distance with the point's; the best
    camera counts (a point on a surface is seen from at least the views it was triangulated from)."""
    from laser_gs.synthetic.generator import make_cameras
    from laser_gs.synthetic.primitives import trace

    T_inv = torch.linalg.inv(scene.world_from_file)  # back to the generator's (file) world
    p = xyz @ T_inv[:3, :3].T + T_inv[:3, 3]
    primitives = [ob.primitive for ob in spec.build_layout().objects]
    best = torch.full((len(p),), float("inf"))
    for c in make_cameras(spec).centers:
        v = p - c
        r = v.norm(dim=-1)
        t, _, _ = trace(primitives, c.expand_as(p).contiguous(), v / r[:, None])
        best = torch.minimum(best, (t - r).abs() / r)
    return best


def test_triangulated_points_lie_on_the_generated_surfaces(scene_copy, small_spec, monkeypatch):
    from laser_gs.backends.gsplat.model import _random_points

    monkeypatch.delenv("LASER_CACHE_DIR", raising=False)
    scene = load_scene(scene_copy)
    found = tri.triangulate(scene)
    assert found.info["points"] == len(found.xyz) >= 150, found.info
    assert found.info["mean_reprojection_error_px"] < 0.5
    rel = _distance_to_surfaces(small_spec, scene, found.xyz)
    # depth along the ray within 2 % for most points (a pixel's disparity over this rig's short baselines is
    # about that), far better than today's random start in the frusta
    print(f"relative distance: median {rel.median():.4f}, within 5 %: {(rel < 0.05).float().mean():.2f}")
    assert rel.median() < 0.02 and (rel < 0.05).float().mean() > 0.7
    rand, _ = _random_points(scene, 2000, torch.Generator().manual_seed(0))
    assert _distance_to_surfaces(small_spec, scene, rand).median() > 5 * rel.median()
    assert ((found.rgb >= 0) & (found.rgb <= 1)).all() and found.rgb.std() > 0.05  # colours from the images

    # cached in the scene folder, in file coordinates: a reload (even with another normalisation) agrees
    cache = tri.cache_file(scene, scene.splits["train"])
    assert cache.parent == scene_copy / "laser_cache" and cache.is_file()
    monkeypatch.setattr("pycolmap.extract_features", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    again = tri.triangulate(scene)
    assert torch.equal(again.xyz, found.xyz)


def test_the_same_scene_gives_the_same_points(scene_copy, tmp_path, monkeypatch):
    """Runs on one scene seed from identical points even when each triangulates for itself (RANSAC seeded)."""
    scene = load_scene(scene_copy)
    monkeypatch.setenv("LASER_CACHE_DIR", str(tmp_path / "a"))
    a = tri.triangulate(scene)
    monkeypatch.setenv("LASER_CACHE_DIR", str(tmp_path / "b"))
    b = tri.triangulate(scene)
    assert tri.cache_file(scene, scene.splits["train"]).is_relative_to(tmp_path / "b")
    assert torch.equal(a.xyz, b.xyz) and torch.equal(a.rgb, b.rgb)


def test_gsplat_starts_from_triangulated_points_and_falls_back_with_a_warning(scene_copy, monkeypatch, tmp_path):
    from rich.console import Console

    from laser_gs.backends.gsplat import backend as gs
    from laser_gs.backends.registry import get_backend
    from laser_gs.training.settings import TrainingSettings

    monkeypatch.setenv("LASER_CACHE_DIR", str(tmp_path / "cache"))
    scene = load_scene(scene_copy)
    found = tri.triangulate(scene)
    backend = get_backend("gsplat")()
    backend.console = Console(record=True, width=200)
    settings = TrainingSettings.resolve(get_backend("gsplat"), "fast",
                                        overrides=["gsplat.init_points=1000", "gsplat.init_from=sparse"])
    backend.setup(scene, settings, dim=None, seed=0)
    means = backend.params["means"].detach()
    assert len(means) == 1000
    # every triangulated point is one of the starting centres
    assert torch.cdist(found.xyz, means, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values.max() < 1e-5
    assert "triangulated points" in backend.console.export_text()

    monkeypatch.setattr(gs, "MIN_POINTS", 10 ** 6)  # too few points: random start, said so
    backend = get_backend("gsplat")()
    backend.console = Console(record=True, width=200)
    backend.setup(scene, settings, dim=None, seed=0)
    assert "start at random" in backend.console.export_text()
    gaps = torch.cdist(found.xyz, backend.params["means"].detach(), compute_mode="donot_use_mm_for_euclid_dist")
    assert gaps.min(dim=1).values.max() > 1e-3


def test_auto_seeds_360_scenes_and_leaves_forward_facing_ones_random(scene_copy, monkeypatch, tmp_path):
    """``init_from = auto``: triangulated points for 360-degree scenes, the frustum start for forward-facing
    ones (where it measured as good; see GsplatSettings.init_from)."""
    import dataclasses

    from laser_gs.backends.registry import get_backend
    from laser_gs.training.settings import TrainingSettings

    monkeypatch.setenv("LASER_CACHE_DIR", str(tmp_path / "cache"))
    scene = load_scene(scene_copy)
    backend = get_backend("gsplat")()
    settings = TrainingSettings.resolve(get_backend("gsplat"), "fast", overrides=["gsplat.init_points=1000"])
    assert settings.model.init_from == "auto"
    backend.settings = settings
    assert scene.forward_facing and backend.sparse_points(scene) is None
    assert not (tmp_path / "cache").exists()  # nothing was triangulated
    xyz, rgb = backend.sparse_points(dataclasses.replace(scene, forward_facing=False))
    assert torch.equal(xyz, tri.triangulate(scene).xyz) and len(rgb) == len(xyz)


def test_inspect_reports_the_sparse_points(scene_copy, monkeypatch, tmp_path):
    from laser_gs_cli.main import laser

    monkeypatch.setenv("LASER_CACHE_DIR", str(tmp_path / "cache"))
    res = CliRunner().invoke(laser, ["inspect", str(scene_copy), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["sparse_points"] == {"source": None, "count": 0}
    res = CliRunner().invoke(laser, ["inspect", str(scene_copy), "--triangulate", "--json"])
    info = json.loads(res.stdout)["sparse_points"]
    assert info["source"] == "triangulated" and info["count"] >= 150 and info["cache"].startswith(str(tmp_path))
    res = CliRunner().invoke(laser, ["inspect", str(scene_copy)])
    assert f"{info['count']:,} triangulated" in res.output


def test_content_share_draws_the_random_rest_around_the_sparse_points(scene_copy):
    """360-degree scenes: ``content_share`` of the random fill lies in the box around the sparse points."""
    import dataclasses

    from laser_gs.backends.gsplat.model import content_box, initial_points

    scene = load_scene(scene_copy)
    scene = dataclasses.replace(scene, forward_facing=False)
    g = torch.Generator().manual_seed(0)
    lo, hi = scene.aabb
    sparse = (lo + (hi - lo) * (0.4 + 0.2 * torch.rand(300, 3, generator=g)), torch.rand(300, 3, generator=g))
    box = content_box(sparse[0], scene.aabb)
    assert (box[0] >= scene.aabb[0]).all() and (box[1] <= scene.aabb[1]).all()
    inside = lambda p: ((p >= box[0]) & (p <= box[1])).all(-1).float().mean()  # noqa: E731
    pts, _ = initial_points(scene, 3300, torch.Generator().manual_seed(1), sparse, content_share=0.8)
    share_in_scene_box = float(((box[1] - box[0]).prod() / (scene.aabb[1] - scene.aabb[0]).prod()))
    assert torch.equal(pts[:300], sparse[0])
    assert inside(pts[300:]) == pytest.approx(0.8 + 0.2 * share_in_scene_box, abs=0.03)
    pts0, _ = initial_points(scene, 3300, torch.Generator().manual_seed(1), sparse, content_share=0.0)
    assert inside(pts0[300:]) == pytest.approx(share_in_scene_box, abs=0.03)
