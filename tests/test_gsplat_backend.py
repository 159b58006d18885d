"""gsplat backend: learning on a generated scene, rendering outputs, resume, PLY export."""

from __future__ import annotations

import numpy as np
import torch
from plyfile import PlyData

from conftest import fit
from laser_gs.backends.gsplat.backend import GsplatBackend
from laser_gs.backends.registry import MODEL_FILE, get_backend
from laser_gs.export import export_points
from laser_gs.export.ply import GAUSSIAN_PROPERTIES, read_ply_classes
from laser_gs.metrics import psnr
from laser_gs.semantics.calibration import PromptOffsets
from laser_gs.semantics.losses import segmentation_logits
from laser_gs.spherical_harmonics import sh_basis
from laser_gs.training.settings import TrainingSettings


def _fit(scene_dir, run_dir, iters, features=True, options=()):
    return fit("gsplat", scene_dir, run_dir, iters, features=features, seed=2,
               overrides=["gsplat.init_points=3000", *options])


def test_registered_and_iters_split():
    assert get_backend("gsplat") is GsplatBackend
    s = TrainingSettings.resolve(GsplatBackend, "fast", iters=100)
    cfg = s.model
    assert cfg.iters + s.semantic.iters == 100 and cfg.refine_start < cfg.refine_stop <= cfg.iters


def test_sh_degree_zero_is_constant_and_bands_are_orthogonal():
    dirs = torch.nn.functional.normalize(torch.randn(20000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    basis = sh_basis(dirs, 3)
    gram = basis.T @ basis * (4 * np.pi / dirs.shape[0])  # Monte-Carlo integral over the sphere
    assert torch.allclose(gram, torch.eye(16), atol=0.08)


def test_fit_improves_psnr_and_renders_semantics(generated, tmp_path):
    scene_dir, _ = generated
    scene, backend = _fit(scene_dir, tmp_path / "run", 60)
    assert backend.lifted_h is not None and "label" in backend.heads_available  # gsplat.fuse_lift (default)
    out = backend.render(scene.cameras, 0, ("rgb", "feature", "label", "logits", "depth", "acc"), backend.text)
    H, W = scene.height, scene.width
    assert out["rgb"].shape == (H, W, 3) and out["feature"].shape == (H, W, 32)
    assert out["logits"].shape == (H, W, len(scene.classes)) and out["depth"].shape == (H, W)
    assert out["acc"].shape == (H, W) and 0.5 < float(out["acc"].mean()) <= 1.0
    offsets = backend.heads.prompt_offsets.for_text(backend.text)  # the run's class calibration
    full = segmentation_logits(out["feature"], backend.text) + offsets  # the cheap logits path is exact
    assert torch.allclose(out["logits"], full, atol=1e-4)
    alone = backend.render(scene.cameras, 0, ("logits",), backend.text)["logits"]  # cached embedding
    assert torch.allclose(alone, out["logits"], atol=1e-5)
    seg = backend.render(scene.cameras, 0, ("segmentation",), backend.text)["segmentation"]
    top2 = out["logits"].topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4  # calibrated: the argmax of the (offset) logits, away from ties
    assert torch.equal(seg[clear], out["logits"].argmax(-1)[clear])
    backend.heads.prompt_offsets = PromptOffsets()  # uncalibrated: the label map from C composited scores
    seg = backend.render(scene.cameras, 0, ("segmentation",), backend.text)["segmentation"]
    plain = alone - offsets
    top2 = plain.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4  # away from ties, the C-channel label map is the argmax
    assert torch.equal(seg[clear], plain.argmax(-1)[clear]) and clear.float().mean() > 0.9
    _, start = _fit(scene_dir, tmp_path / "start", 1, features=False)
    before = psnr(start.render(scene.cameras, 0)["rgb"], scene.images[0])
    after = psnr(out["rgb"], scene.images[0])
    assert after > before + 3 and after > 18, (before, after)
    again = GsplatBackend.load(tmp_path / "run" / MODEL_FILE)
    out2 = again.render(scene.cameras, 0, ("rgb", "feature"))
    assert torch.allclose(out["rgb"], out2["rgb"], atol=1e-5)
    assert torch.allclose(out["feature"], out2["feature"], atol=1e-4)


def test_unknown_render_output_is_an_error(generated, tmp_path):
    scene, backend = _fit(generated[0], tmp_path / "run", 4, features=False)
    try:
        backend.render(scene.cameras, 0, ("rgb", "normals"))
        raise AssertionError("expected an error")
    except ValueError as exc:
        assert "normals" in str(exc) and "rgb" in str(exc)


def test_ply_export_layout_and_labels(generated, tmp_path):
    scene_dir, _ = generated
    scene, backend = _fit(scene_dir, tmp_path / "run", 12)
    paths = export_points(backend.points(), tmp_path / "g.ply", scene.classes, backend.text, color_by_label=True)
    assert [p.name for p in paths] == ["g.ply", "g_by_label.ply"]
    ply = PlyData.read(str(paths[0]))
    names = [p.name for p in ply["vertex"].properties]
    assert names == GAUSSIAN_PROPERTIES + ["label", "label_score"]
    v = ply["vertex"]
    assert v.count == backend.params["means"].shape[0]
    assert np.allclose(v["x"], backend.params["means"][:, 0].detach().numpy())
    assert v["label"].dtype.kind == "i" and v["label"].min() >= 0 and v["label"].max() < len(scene.classes)
    assert ((v["label_score"] > 0) & (v["label_score"] <= 1)).all()
    assert read_ply_classes(paths[0]) == scene.classes
    coloured = PlyData.read(str(paths[1]))["vertex"]
    assert not np.allclose(coloured["f_dc_0"], v["f_dc_0"])


def test_resume_after_interrupt_matches(generated, tmp_path, monkeypatch):
    scene_dir, _ = generated
    # one thread: multithreaded reductions sum in a varying order, and Adam turns those last-bit differences
    # in near-zero gradients of the semantic field's grid into visible ones; resume must match bit for bit
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_resume(scene_dir, tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)


def _check_resume(scene_dir, tmp_path, monkeypatch):
    from laser_gs.training import loop
    from laser_gs.training.trainer import Trainer

    opts = ["trainer.checkpoint_every=5"]
    _, straight = _fit(scene_dir, tmp_path / "a", 24, options=opts)
    original = Trainer.step
    calls = {"n": 0}

    def flaky(self, it):
        calls["n"] += 1
        if calls["n"] == 18:
            raise KeyboardInterrupt
        return original(self, it)

    monkeypatch.setattr(Trainer, "step", flaky)
    try:
        _fit(scene_dir, tmp_path / "b", 24, options=opts)
        raise AssertionError("expected an interruption")
    except loop.TrainingInterrupted:
        pass
    monkeypatch.setattr(Trainer, "step", original)
    _, resumed = _fit(scene_dir, tmp_path / "b", 24, options=opts)
    for key, value in straight.params.items():
        assert value.shape == resumed.params[key].shape, key
        assert torch.equal(value, resumed.params[key]), key
    for (key, a), b in zip(straight.field.state_dict().items(), resumed.field.state_dict().values()):
        assert torch.equal(a, b), key


def test_trained_stage_two_fuses_the_lift_and_keeps_the_label_volume(generated, tmp_path):
    """``gsplat.fuse_lift``: each Gaussian's feature becomes unit(trained) + unit(lifted CLIP) (as a direction), on the
    best E-dim basis (the decoder); label codes still come from the trained field; saved and reloaded as is."""
    from laser_gs.train import load_run_inputs
    from laser_gs.run import read_run_config
    from laser_gs.training.semantic import FeatureTargets

    scene_dir, _ = generated
    scene, backend = _fit(scene_dir, tmp_path / "run", 24, options=["gsplat.fuse_lift=false"])
    assert backend.lifted_h is None  # switched off: the field's features as trained
    backend.heads.prompt_offsets = PromptOffsets()
    with torch.no_grad():
        h, code = backend._semantic()
        trained = torch.nn.functional.normalize(backend.heads.decode(h), dim=-1)
        label_before = backend.render(scene.cameras, 0, ("label",))["label"]
    _, features = load_run_inputs(read_run_config(tmp_path / "run"))
    targets = FeatureTargets(features, scene, backend.device)
    backend.cfg.fuse_lift = True
    backend.cfg.smooth_iters = 0  # the fusion rule alone (the smoothing after it: test_point_smoothing.py)
    backend.finish_semantics(targets)
    clip, _, weight = backend.lifted
    with torch.no_grad():
        fused, code_after = backend._semantic()
        U = backend.heads.attention.unzip.weight  # [D, E], orthonormal columns (SVD basis)
        want = torch.nn.functional.normalize(trained + torch.nn.functional.normalize(clip, dim=-1), dim=-1)
        assert torch.allclose(backend.heads.decode(fused), want @ U @ U.T, atol=1e-4)
        seen = weight > 0
        cos = torch.nn.functional.cosine_similarity(backend.heads.decode(fused)[seen], want[seen], dim=-1)
        assert float((cos * weight[seen]).sum() / weight[seen].sum()) > 0.9  # the basis keeps most of it
        assert torch.equal(code_after, code)  # label codes from the trained field, unchanged
        assert torch.allclose(backend.render(scene.cameras, 0, ("label",))["label"], label_before)
    assert "label" in backend.heads_available
    backend.save(tmp_path / "fused.ckpt")
    again = GsplatBackend.load(tmp_path / "fused.ckpt")
    a = backend.render(scene.cameras, 0, ("feature", "label"))
    b = again.render(scene.cameras, 0, ("feature", "label"))
    assert torch.allclose(a["feature"], b["feature"], atol=1e-5) and torch.allclose(a["label"], b["label"], atol=1e-5)
