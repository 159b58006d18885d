"""``laser train --from BASE``: a new run on a base run's stage 1, without training stage 1 again."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from laser_gs_cli.main import laser
from test_user_errors import user_error

ITERS = "40"


def _train(*args) -> None:
    res = CliRunner().invoke(laser, ["train", *[str(a) for a in args]])
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def runs(generated, tmp_path_factory):
    """A base run (trained semantics) and, from scratch, the lift of the same stage 1 (the reference)."""
    root = tmp_path_factory.mktemp("from")
    scene = generated[0]
    _train("--backend", "gsplat", "--scene", scene, "--out", root / "base", "--iters", ITERS, "--preset", "quick")
    _train("--backend", "gsplat", "--scene", scene, "--out", root / "full_lift", "--iters", ITERS, "--preset",
           "quick", "--set", "semantic.method=lift")
    return root


def test_from_skips_stage_1_and_equals_a_full_run(runs):
    from laser_gs.backends.registry import MODEL_FILE, get_backend
    from laser_gs.run import open_run

    new = runs / "from_lift"
    _train("--from", runs / "base", "--out", new, "--set", "semantic.method=lift")
    log = json.loads((new / "train_log.json").read_text())
    assert log["stage1_from"]["run"] == str((runs / "base").resolve())
    assert "reconstruct" not in log["stage_seconds"] or log["stage_seconds"]["reconstruct"] < 1.0
    from laser_gs.run_from import base_stage1

    _, stage1, step = base_stage1(runs / "base")  # the quick preset lifts: its stage 1 ends the run's steps
    assert stage1.name == f"step_{step:08d}.ckpt"
    assert (new / "checkpoints" / "reconstruct_end.ckpt").read_bytes() == stage1.read_bytes()  # bit-identical
    config = json.loads((new / "config.json").read_text())
    assert config["backend"] == "gsplat" and config["preset"] == "quick" and config["base_run"]
    from laser_gs.training.checkpoint import load_checkpoint

    _, ref, scene = open_run(runs / "full_lift")
    ours = get_backend("gsplat").load(new / MODEL_FILE)
    trained = load_checkpoint(stage1)["model"]["model"]["params"]
    for name in ("means", "scales", "opacities"):  # the lift leaves the base's stage 1 Gaussians as they were
        assert torch.equal(ours.params[name], trained[name]), name
    # against a full run of the same settings: equal up to the CPU's thread-order rounding in both stage 1s
    a = ours.render(scene.cameras, 0, ("logits", "segmentation"), ours.text)
    b = ref.render(scene.cameras, 0, ("logits", "segmentation"), ref.text)
    assert (a["segmentation"] == b["segmentation"]).float().mean() > 0.95
    assert (a["logits"] - b["logits"]).abs().mean() < 0.02


def test_from_refuses_a_base_of_another_backend_scene_or_without_stage_1(runs, generated, scene_copy, tmp_path,
                                                                         small_spec):
    base = runs / "base"
    user_error(["train", "--from", base, "--out", tmp_path / "a", "--backend", "tensorf"], "not the one",
               "backend")
    user_error(["train", "--from", base, "--out", tmp_path / "b", "--scene", scene_copy], "not the one", "scene")
    user_error(["train", "--from", base, "--out", tmp_path / "c", "--set", "gsplat.init_points=5000"],
               "gsplat.init_points")
    user_error(["train", "--from", base, "--out", base, "--set", "semantic.method=lift"], "already holds a run")
    _train("--backend", "gsplat", "--scene", generated[0], "--out", tmp_path / "geo", "--iters", "8", "--preset",
           "quick", "--features", "none")
    user_error(["train", "--from", tmp_path / "geo", "--out", tmp_path / "d"], "no stage 1 checkpoint")
    user_error(["train", "--out", tmp_path / "e"], "--backend and --scene")
    from laser_gs.synthetic import make_scene

    wide = make_scene(tmp_path / "wide", dataclasses.replace(small_spec, feature_dim=16))  # other CLIP width
    assert wide is not None
    user_error(["train", "--from", base, "--out", tmp_path / "f", "--features-dir", tmp_path / "wide" / "features"],
               "32-dimensional", "16-dimensional")
    assert not any((tmp_path / n).exists() for n in "abcdef")


def test_from_takes_stage_2_settings_of_the_backend(runs, tmp_path):
    """The backend's stage-2 fields (semantic field, lift, smoothing) may differ from BASE's; they are declared
    per backend, and every declared one is a real field."""
    from laser_gs.backends.registry import get_backend, list_backends

    _train("--from", runs / "base", "--out", tmp_path / "nosmooth", "--set", "semantic.method=lift",
           "--set", "gsplat.smooth_iters=0", "--set", "gsplat.lift_scale=0.25")
    config = json.loads((tmp_path / "nosmooth" / "config.json").read_text())
    assert config["settings"]["gsplat"]["smooth_iters"] == 0
    for name in list_backends():
        cls = get_backend(name).settings_class
        assert cls.stage2_fields <= {f.name for f in dataclasses.fields(cls)}, name
        assert "iters" not in cls.stage2_fields
