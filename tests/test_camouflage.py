"""The camouflage case on a small generated scene: a grey pillar before a grey wall (the colour and texture of
its background, about one CLIP token wide). On the scene's true geometry (Gaussians on the generator's
surfaces, so reconstruction noise is out of the question), gsplat's lifted semantics must keep the pillar, and
the geometry-aware smoothing (``gsplat.smooth_iters``) is what keeps it."""

from __future__ import annotations

import math

import torch
from rich.console import Console

from conftest import fit
from laser_gs.backends.gsplat.model import empty_params
from laser_gs.evaluation import evaluate_run
from laser_gs.spherical_harmonics import SH_C0
from laser_gs.synthetic.bound import world_points
from laser_gs.synthetic.generator import SceneSpec, make_scene
from laser_gs.training.calibrate import calibrate_classes
from laser_gs.training.semantic import FeatureTargets

SPEC = SceneSpec(width=240, height=180, views=12, annotated=2, seed=4, feature_dim=32, layout="random", objects=4,
                 similar=2, camouflage=True)


def _true_gaussians(gen, scene, sh_degree: int, stride: int = 2):
    """Gaussians on the generator's surfaces, seen from every 3rd view, in the loaded scene's frame (the
    loaders recentre and rescale: camera-relative geometry is the generator's up to the scale ``s``)."""
    s = float((scene.cameras.centers[1] - scene.cameras.centers[0]).norm()
              / (gen.cameras.centers[1] - gen.cameras.centers[0]).norm())
    pts, rgb, size = [], [], []
    for v in range(0, len(gen.depth), 3):
        depth = gen.depth[v] * s
        p = world_points(scene.cameras, v, depth)[::stride, ::stride].reshape(-1, 3)
        pts.append(p)
        rgb.append(gen.images[v][::stride, ::stride].reshape(-1, 3))
        size.append((depth[::stride, ::stride] / scene.cameras.K[v, 0, 0] * stride * 0.6).reshape(-1))
    pts, rgb, size = torch.cat(pts), torch.cat(rgb), torch.cat(size)
    params = empty_params(len(pts), sh_degree)
    with torch.no_grad():
        params["means"].copy_(pts)
        params["scales"].copy_(size.log()[:, None].expand(-1, 3))
        params["quats"][:, 0] = 1.0
        params["opacities"].fill_(math.log(0.95 / 0.05))
        params["sh0"].copy_(((rgb - 0.5) / SH_C0)[:, None])
    return params


def _pillar_iou(backend, scene, targets, smooth_iters: int) -> dict[str, float]:
    backend.cfg.smooth_iters = smooth_iters
    backend.lift(targets)
    calibrate_classes(backend, scene, Console(quiet=True))
    return evaluate_run(backend, scene, None, backend.text, timing=False)["per_class"]


def test_gsplat_keeps_a_camouflaged_pillar(tmp_path):
    gen = make_scene(tmp_path / "scene", SPEC)
    # a run for its set-up (cameras, heads, text); its few stage-1 steps are replaced by the true geometry
    scene, backend = fit("gsplat", tmp_path / "scene", tmp_path / "run", 4, preset="quick",
                         overrides=["gsplat.init_points=500"])
    from laser_gs.run import read_run_config
    from laser_gs.train import load_run_inputs

    features = load_run_inputs(read_run_config(tmp_path / "run"))[1]
    backend.params = _true_gaussians(gen, scene, backend.cfg.sh_degree).to(backend.device)
    backend.lifted = None
    targets = FeatureTargets(features, scene, backend.device)
    plain = _pillar_iou(backend, scene, targets, 0)
    smoothed = _pillar_iou(backend, scene, targets, 30)
    # measured (2026-12-04): pillar 40.7 without the smoothing, 44.6 with it; the wall 93.0 / 94.7. Before the
    # fix gsplat's trained runs of this layout lost the pillar almost entirely (0 in 2026-11-30's benchmark).
    assert smoothed["grey pillar"] > 30, smoothed
    assert smoothed["grey pillar"] > plain["grey pillar"] - 1, (plain, smoothed)
    assert smoothed["grey wall"] > 85, smoothed  # keeping the pillar did not cost the wall
