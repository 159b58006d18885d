"""TensoRF backend: geometry helpers, learning, resume, rendering outputs."""

from __future__ import annotations

import torch

from conftest import fit
from laser_gs.backends.registry import MODEL_FILE, get_backend
from laser_gs.backends.tensorf.backend import TensoRFBackend
from laser_gs.backends.tensorf.sampling import ndc_rays, ray_box
from laser_gs.data import load_scene
from laser_gs.metrics import psnr
from laser_gs.semantics.calibration import PromptOffsets
from laser_gs.semantics.losses import segmentation_logits
from laser_gs.training.loop import TrainingInterrupted
from laser_gs.training.settings import TrainingSettings
from laser_gs.training.trainer import Trainer


def test_ndc_keeps_world_points_on_the_ray():
    """A world point on a ray maps into NDC onto the NDC ray, at t' in [0, 1] (t'=1 at infinity)."""
    g = torch.Generator().manual_seed(0)
    o = torch.randn(50, 3, generator=g) * 0.2
    d = torch.nn.functional.normalize(torch.randn(50, 3, generator=g) * 0.3 + torch.tensor([0, 0, 1.0]), dim=-1)
    ax, ay = 1.7, 1.3
    on, dn = ndc_rays(o, d, ax, ay)
    depth = 1.5 + 10 * torch.rand(50, 1, generator=g)
    X = o + (depth - o[:, 2:]) / d[:, 2:] * d  # point at world z = depth
    Xn = torch.stack([ax * X[:, 0] / X[:, 2], ay * X[:, 1] / X[:, 2], 1 - 2 / X[:, 2]], -1)
    t = (Xn[:, 2] - on[:, 2]) / dn[:, 2]
    assert torch.allclose(on + t[:, None] * dn, Xn, atol=1e-4)
    assert (t > 0).all() and (t < 1).all()


def test_ray_box_hits_and_misses():
    aabb = torch.tensor([[-1.0, -1, -1], [1, 1, 1]])
    o = torch.tensor([[0.0, 0, -3], [5.0, 5, -3]])
    d = torch.tensor([[0.0, 0, 1], [0.0, 0, 1]])
    t_in, t_out = ray_box(o, d, aabb)
    assert torch.allclose(t_in[0], torch.tensor(2.0)) and torch.allclose(t_out[0], torch.tensor(4.0))
    assert t_out[1] <= t_in[1]


def test_iters_override_scales_every_stage():
    s = TrainingSettings.resolve(TensoRFBackend, "fast", iters=90)
    cfg = s.model
    assert cfg.iters + s.semantic.iters == 90
    assert all(step < cfg.iters for step in cfg.upsample_at + cfg.occupancy_at)
    assert 0 < s.semantic.joint_start < s.semantic.sct_start < s.semantic.iters
    assert get_backend("tensorf") is TensoRFBackend


def _fit(scene_dir, run_dir, iters, features=True, options=()):
    return fit("tensorf", scene_dir, run_dir, iters, features=features, overrides=options, seed=1)


def test_reconstruction_learns(generated, tmp_path):
    scene_dir, _ = generated
    scene = load_scene(scene_dir)
    untrained = TensoRFBackend()
    untrained.setup(scene, TrainingSettings.resolve(TensoRFBackend, "fast"), None, seed=0)
    before = psnr(untrained.render(scene.cameras, 0)["rgb"], scene.images[0])
    _, backend = _fit(scene_dir, tmp_path / "run", 150, features=False)
    after = psnr(backend.render(scene.cameras, 0)["rgb"], scene.images[0])
    assert after > before + 5 and after > 17, (before, after)
    assert (tmp_path / "run" / MODEL_FILE).is_file()


def test_render_outputs_and_reload(generated, tmp_path):
    scene_dir, _ = generated
    scene, backend = _fit(scene_dir, tmp_path / "run", 30)
    text = backend.text
    out = backend.render(scene.cameras, 1, ("rgb", "depth", "feature", "label", "logits"), text)
    H, W = scene.height, scene.width
    assert out["rgb"].shape == (H, W, 3) and out["depth"].shape == (H, W)
    assert out["feature"].shape == (H, W, 32) and out["logits"].shape == (H, W, len(scene.classes))
    assert torch.allclose(out["label"].sum(-1), torch.ones(H, W), atol=1e-4)
    offsets = backend.heads.prompt_offsets.for_text(text)  # the run's class calibration
    assert torch.allclose(out["logits"], segmentation_logits(out["feature"], text) + offsets, atol=1e-4)
    seg = backend.render(scene.cameras, 1, ("segmentation",), text)["segmentation"]
    top2 = out["logits"].topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4  # calibrated: the argmax of the (offset) logits, away from ties
    assert torch.equal(seg[clear], out["logits"].argmax(-1)[clear])
    backend.heads.prompt_offsets = PromptOffsets()  # uncalibrated: the label map from C class scores
    seg = backend.render(scene.cameras, 1, ("segmentation",), text)["segmentation"]
    plain = out["logits"] - offsets
    top2 = plain.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4
    assert torch.equal(seg[clear], plain.argmax(-1)[clear]) and clear.float().mean() > 0.9
    again = TensoRFBackend.load(tmp_path / "run" / MODEL_FILE)
    out2 = again.render(scene.cameras, 1, ("rgb", "feature"), text)
    assert torch.allclose(out["rgb"], out2["rgb"], atol=1e-6)
    assert torch.allclose(out["feature"], out2["feature"], atol=1e-5)


def test_feature_render_does_not_depend_on_chunk_size(generated, tmp_path):
    scene_dir, _ = generated
    scene, backend = _fit(scene_dir, tmp_path / "run", 24)
    a = backend.render(scene.cameras, 0, ("feature",), chunk=8192)["feature"]
    b = backend.render(scene.cameras, 0, ("feature",), chunk=777)["feature"]
    assert torch.allclose(a, b, atol=1e-5)


def test_interrupted_run_resumes_to_the_same_result(generated, tmp_path, monkeypatch):
    scene_dir, _ = generated
    opts = ["trainer.checkpoint_every=10"]
    _, straight = _fit(scene_dir, tmp_path / "a", 45, options=opts)

    calls = {"n": 0}
    original = Trainer._apply

    def flaky(self, loss, shown):
        calls["n"] += 1
        if calls["n"] == 34:  # inside the semantic stage, between checkpoints
            raise KeyboardInterrupt
        return original(self, loss, shown)

    monkeypatch.setattr(Trainer, "_apply", flaky)
    try:
        _fit(scene_dir, tmp_path / "b", 45, options=opts)
        raise AssertionError("expected an interruption")
    except TrainingInterrupted:
        pass
    monkeypatch.setattr(Trainer, "_apply", original)
    _, resumed = _fit(scene_dir, tmp_path / "b", 45, options=opts)
    a, b = straight.state_dict(), resumed.state_dict()
    for key in a["model"]["field"]:
        assert torch.allclose(a["model"]["field"][key], b["model"]["field"][key], atol=1e-5), key
    for key in a["heads"]:
        assert torch.allclose(a["heads"][key], b["heads"][key], atol=1e-5), key
