"""Unbounded 360-degree scenes: the contraction, when it applies, how tensorf samples it, and what it buys."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import fit
from laser_gs.backends.tensorf.render import RayGeometry, num_samples
from laser_gs.backends.tensorf.sampling import OccupancyGrid, sample_contracted
from laser_gs.data import load_scene
from laser_gs.data.unbounded import Contraction, rig_center, scene_contraction
from laser_gs.metrics import psnr


def test_contraction_keeps_the_ball_and_squeezes_the_rest_into_a_shell():
    c = Contraction((0.5, -1.0, 2.0), 3.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 3, generator=g) * torch.logspace(-1, 3, 4000)[:, None] + torch.tensor(c.center)
    y = c.contract(x)
    d = (x - torch.tensor(c.center)).norm(dim=-1) / c.radius
    n = y.norm(dim=-1)
    inside = d <= 1
    assert inside.any() and (~inside).any()
    assert torch.allclose(y[inside] * c.radius + torch.tensor(c.center), x[inside], atol=1e-5)
    assert (n[~inside] > 1).all() and (n < 2).all()
    assert torch.allclose(n[~inside], 2 - 1 / d[~inside], atol=1e-5)  # radius 2 - 1/d, direction kept
    order = torch.argsort(d)
    assert (n[order].diff() >= -1e-6).all()  # monotone in distance
    far = d < 100  # float32 cannot invert the very far shell exactly
    assert torch.allclose(c.uncontract(y[far]), x[far], rtol=1e-3, atol=1e-3)


def _orbit_scene(tmp_path_factory):
    from laser_gs.synthetic import SceneSpec, make_scene

    out = tmp_path_factory.mktemp("orbit") / "scene"
    make_scene(out, SceneSpec(width=96, height=72, views=10, annotated=2, seed=5, feature_dim=32, cameras="orbit",
                              layout="random", objects=3))
    return out


@pytest.fixture(scope="module")
def orbit_scene(tmp_path_factory):
    return _orbit_scene(tmp_path_factory)


def test_only_the_open_orbit_scene_is_contracted(orbit_scene, generated):
    scene = load_scene(orbit_scene)
    c = scene_contraction(scene.cameras, scene.aabb, scene.forward_facing)
    assert c is not None
    # centred on what the orbit looks at (the generator's target, in the loader's world frame)
    target_file = torch.tensor([0.0, 1.0, 0.0, 1.0])  # FLOOR_Y - 0.5
    target = (scene.world_from_file @ target_file)[:3]
    assert (torch.tensor(c.center) - target).norm() < 0.05 * c.radius
    assert float((scene.cameras.centers - torch.tensor(c.center)).norm(dim=-1).max()) <= c.radius + 1e-4
    assert load_scene(orbit_scene).summary()["unbounded"]["radius"] == pytest.approx(c.radius)
    ff = load_scene(generated[0])
    assert scene_contraction(ff.cameras, ff.aabb, ff.forward_facing) is None
    assert ff.summary()["unbounded"] is None
    # an object capture: cameras on a sphere of radius 4 around a box of half size 1.5 (Blender lego)
    from laser_gs.data.cameras import Cameras, look_at

    eyes = [torch.tensor([4 * math.cos(a), 0.5, 4 * math.sin(a)]) for a in torch.linspace(0, 6, 12).tolist()]
    cams = Cameras(torch.stack([look_at(e, torch.zeros(3)) for e in eyes]),
                   torch.tensor([[50.0, 0, 32], [0, 50, 32], [0, 0, 1]]).expand(12, 3, 3).clone(), 64, 64)
    assert rig_center(cams).norm() < 1e-3
    assert scene_contraction(cams, torch.tensor([[-1.5] * 3, [1.5] * 3]), False) is None
    assert scene_contraction(cams, torch.tensor([[-60.0] * 3, [60.0] * 3]), False) is not None


def test_contracted_samples_cross_the_ball_then_the_shell_evenly():
    c = Contraction((0.0, 0.0, 0.0), 2.0)
    geometry = RayGeometry(torch.tensor([[-2.0] * 3, [2.0] * 3]), False, (0.0, 0.0), 0.0, 25.0, 1e-4, c)
    n, step = num_samples(geometry, [64, 64, 64], 1.0, 64, 1000)
    origins = torch.tensor([[0.0, 0.0, 0.0], [0.5, -0.3, 0.2], [1.9, 0.0, 0.0]])
    dirs = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [1.0, 2.0, -1.0], [-1.0, 0.1, 0.0]]), dim=-1)
    s = sample_contracted(origins, dirs, c, n, step)
    assert s.xyz.shape == (3, n, 3) and s.inside.shape == (3, n)
    assert (s.xyz.abs() <= 1).all()  # the grid spans the whole contracted ball
    for r in range(3):
        t = s.t[r][s.inside[r]]
        assert (t.diff() > 0).all()  # valid samples in ray order
        rho = (2 * s.xyz[r][s.inside[r]]).norm(dim=-1)
        ball = rho <= 1
        assert ball.sum() >= 10 and (~ball).sum() >= 10
        assert rho[~ball].max() > 1.95  # the shell reaches (almost) infinity
        assert (s.deltas[r] > 0).all()
        # the ball is crossed in equal world steps of about a grid voxel (4 / 64 contracted = 0.125 world)
        assert torch.allclose(t[ball].diff(), torch.full_like(t[ball].diff(), step), atol=1e-4)
        assert step == pytest.approx(0.125)
    # from the centre the shell's samples are exactly evenly spaced in the contracted radius
    rho0 = (2 * s.xyz[0][s.inside[0]]).norm(dim=-1)
    shell = rho0[rho0 > 1]
    assert shell.diff().std() < 0.01 * shell.diff().mean()


def test_occupancy_judges_shell_cells_over_their_world_length():
    """A faint, far density (the sky) is opaque over a shell cell's long world extent: it must not be pruned."""
    c = Contraction((0.0, 0.0, 0.0), 1.0)
    grid = OccupancyGrid([32, 32, 32])

    def sigma(xyz):  # density 0.02 only in the outer half of the shell (world distance > 2 radii)
        return torch.where((2 * xyz).norm(dim=-1) > 1.5, torch.full_like(xyz[:, 0], 0.02), torch.zeros_like(xyz[:, 0]))

    assert grid.update(sigma, 0.1, 25.0, 0.05) == 0.0  # judged over the ball's step: all pruned
    assert grid.update(sigma, 0.1, 25.0, 0.05, contraction=c) > 0.1


def test_occupancy_prunes_cells_at_the_density_floor_however_long_their_steps():
    """softplus(raw - 10) never reaches 0: over a contracted scene's long steps an untrained cell's floor density
    alone passed the alpha threshold, so every cell stayed (no pruning, appearance evaluated everywhere).
    Judged above the floor, only the content (and its one-cell dilation) stays, and the faint sky still does."""
    c = Contraction((0.0, 0.0, 0.0), 1.0)
    grid = OccupancyGrid([32, 32, 32])
    floor = float(torch.nn.functional.softplus(torch.tensor(-10.0)))

    def sigma(xyz):  # the floor everywhere, a dense blob at the centre, a faint sky in the outer shell
        rho = (2 * xyz).norm(dim=-1)
        return floor + 5.0 * (rho < 0.2) + 0.02 * (rho > 1.5)

    assert grid.update(sigma, 0.1, 25.0, 1e-4, contraction=c) == 1.0  # the floor passes the threshold everywhere
    kept = grid.update(sigma, 0.1, 25.0, 1e-4, contraction=c, floor=floor)
    zs, ys, xs = torch.meshgrid(*[torch.linspace(-1 + 1 / 32, 1 - 1 / 32, 32)] * 3, indexing="ij")
    rho = 2 * torch.stack([xs, ys, zs], -1).norm(dim=-1)
    expected = torch.nn.functional.max_pool3d(((rho < 0.2) | (rho > 1.5)).float()[None, None], 3, 1, 1)[0, 0] > 0
    assert torch.equal(grid.mask, expected)  # content and sky kept (dilated), the floor-only cells pruned
    assert kept == pytest.approx(float(expected.float().mean())) and not grid.mask[(rho > 0.5) & (rho < 1.2)].any()


def test_contraction_spends_the_voxel_budget_on_the_rig_not_the_horizon(orbit_scene):
    """Same voxel budget: a voxel at the objects is several times finer contracted than in the scene's box."""
    from laser_gs.backends.tensorf.backend import TensoRFBackend
    from laser_gs.training.settings import TrainingSettings

    scene = load_scene(orbit_scene)
    sizes = {}
    for mode in ("box", "auto"):
        b = TensoRFBackend()
        b.setup(scene, TrainingSettings.resolve(TensoRFBackend, "fast", overrides=[f"tensorf.unbounded={mode}"]),
                None, seed=0)
        res = torch.tensor(b.field.resolution, dtype=torch.float32)
        span = (b.geometry.aabb[1] - b.geometry.aabb[0]).cpu()
        voxel = span / res  # in the grid's units
        if b.geometry.contraction is not None:
            voxel = voxel * b.geometry.contraction.radius  # the ball is linear: one contracted unit = one radius
        sizes[mode] = float(voxel.mean())
        assert b.field.resolution[0] * b.field.resolution[1] * b.field.resolution[2] <= 1.2 * 48 ** 3
        # every sample lies in the grid and the ball is crossed: enough samples for its diameter
        n, step = b._samples()
        if mode == "auto":
            assert step * (2 * n // 3) >= 2 * b.geometry.contraction.radius - 1e-4
    assert sizes["auto"] * 4 < sizes["box"], sizes


def test_background_sphere_tiles_what_the_views_see(orbit_scene):
    from laser_gs.backends.gsplat.model import background_sphere

    scene = load_scene(orbit_scene)
    c = scene_contraction(scene.cameras, scene.aabb, scene.forward_facing)
    pts, cols, scales = background_sphere(scene, c, 500, 10.0)
    assert 450 <= len(pts) <= 500 and cols.shape == pts.shape and scales.shape == (len(pts),)
    dist = (pts - torch.tensor(c.center)).norm(dim=-1)
    assert torch.allclose(dist, torch.full_like(dist, 10 * c.radius), rtol=1e-4)
    uv, depth = scene.cameras.project(pts)
    seen = ((depth > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < scene.width) & (uv[..., 1] >= 0)
            & (uv[..., 1] < scene.height))
    assert seen.any(0).all()  # every point is in some view
    # each point's colour is a pixel of a view that sees it
    v = seen.float().argmax(0)
    px = uv[v, torch.arange(len(pts))].long()
    assert torch.allclose(cols, scene.images[v, px[:, 1], px[:, 0]].float())
    # the splats tile the sphere: the nearest neighbour is about one spacing away
    from laser_gs.backends.gsplat.model import knn_distance

    nn = knn_distance(pts, k=1)
    assert 0.5 < float(nn.median() / scales[0]) < 1.5


def test_gsplat_seeds_a_background_and_contracts_its_field_only_when_unbounded(orbit_scene, generated):
    from laser_gs.backends.gsplat.backend import GsplatBackend
    from laser_gs.training.settings import TrainingSettings

    settings = TrainingSettings.resolve(GsplatBackend, "quick", overrides=["gsplat.init_from=random"])
    n = settings.model.init_points
    b = GsplatBackend()
    b.setup(load_scene(orbit_scene), settings, None, seed=0)
    assert b.contraction is not None
    dist = (b.params["means"].detach() - torch.tensor(b.contraction.center)).norm(dim=-1)
    on_sphere = (dist / (10 * b.contraction.radius) - 1).abs() < 1e-4
    assert abs(int(on_sphere.sum()) - round(0.1 * n)) <= 0.02 * n
    assert b.params["means"].shape[0] == n
    # gsplat's "too big" pruning (after an opacity reset) must spare the background's splats
    bg_size = float(b.params["scales"].detach()[on_sphere].exp().max())
    assert b.strategy.prune_scale3d * b.strategy_state["scene_scale"] > bg_size
    restored = GsplatBackend()
    restored.settings = settings
    restored.load_model_state(b.model_state())
    assert restored.contraction == b.contraction
    flat = GsplatBackend()
    flat.setup(load_scene(generated[0]), settings, None, seed=0)
    assert flat.contraction is None


def test_gsplat_on_an_open_orbit_scene_reconstructs_far_better_with_its_background(orbit_scene, tmp_path):
    """The background sphere and the content-following start against the plain box start (300 steps)."""
    scene = load_scene(orbit_scene)
    scores = {}
    for mode, extra in (("off", ["gsplat.init_content_share=0"]), ("auto", [])):
        _, b = fit("gsplat", orbit_scene, tmp_path / mode, 300, features=False,
                   overrides=["gsplat.init_points=3000", f"gsplat.unbounded={mode}", *extra])
        scores[mode] = sum(psnr(b.render(scene.cameras, v)["rgb"], scene.images[v])
                           for v in scene.train_views) / len(scene.train_views)
    assert scores["auto"] > 20 and scores["auto"] > scores["off"] + 5, scores


def test_inspect_says_how_space_is_parameterised(orbit_scene, generated):
    from click.testing import CliRunner

    from laser_gs_cli.main import laser

    res = CliRunner().invoke(laser, ["inspect", str(orbit_scene)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "unbounded: contracted beyond a ball of radius" in res.output
    res = CliRunner().invoke(laser, ["inspect", str(generated[0])], terminal_width=200)
    assert "NDC (forward-facing rig)" in res.output
