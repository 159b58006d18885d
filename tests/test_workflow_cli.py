"""End-to-end CLI: train both backends briefly, then eval, export and bench through the registry."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from plyfile import PlyData

from cli.main import laser


@pytest.fixture(scope="module")
def runs(generated, tmp_path_factory):
    scene_dir, _ = generated
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for backend in ("tensorf", "gsplat"):
        run = root / backend
        extra = ["--iters", "16"]
        res = CliRunner().invoke(laser, ["train", "--backend", backend, "--scene", str(scene_dir), "--out", str(run),
                                         *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        out[backend] = run
    return out


@pytest.mark.parametrize("backend", ["tensorf", "gsplat"])
def test_eval_json(runs, backend, tmp_path):
    res = CliRunner().invoke(laser, ["eval", str(runs[backend]), "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    for key in ("miou", "accuracy", "per_class", "psnr", "render_fps", "teacher", "heads"):
        assert key in m, key
    assert 0 <= m["miou"] <= 100 and 0 <= m["teacher"]["miou"] <= 100
    assert set(m["heads"]) == {"feature", "label", "ensemble"}
    pngs = sorted(p.name for p in (runs[backend] / "eval").glob("*.png"))
    assert len(pngs) == 3


@pytest.mark.parametrize("backend", ["tensorf", "gsplat"])
def test_export_ply(runs, backend, tmp_path):
    out = tmp_path / "x.ply"
    res = CliRunner().invoke(laser, ["export", str(runs[backend]), "--ply", str(out), "--color-by-label"])
    assert res.exit_code == 0, res.output
    v = PlyData.read(str(out))["vertex"]
    names = [p.name for p in v.properties]
    assert names[:3] == ["x", "y", "z"] and names[-2:] == ["label", "label_score"]
    assert (tmp_path / "x_by_label.ply").is_file()


def test_export_rejects_empty_prompts(runs, tmp_path):
    res = CliRunner().invoke(laser, ["export", str(runs["gsplat"]), "--ply", str(tmp_path / "x.ply"),
                                     "--prompts", "mug,,table"])
    assert res.exit_code == 2 and "non-empty prompts" in res.output


def test_bench_json(runs, tmp_path):
    res = CliRunner().invoke(laser, ["bench", str(runs["tensorf"]), str(runs["gsplat"]), "--frames", "1",
                                     "--json", str(tmp_path / "b.json"), "--size", "64x48"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "b.json").read_text())["runs"]
    assert [r["backend"] for r in data] == ["tensorf", "gsplat"]
    for r in data:
        for key in ("device", "resolution", "ms_rgb", "fps_rgb", "ms_segmentation", "fps_segmentation",
                    "peak_mb_segmentation", "miou", "accuracy"):
            assert key in r, key
        assert r["resolution"] == [64, 48]
    assert "speedup_segmentation_vs_first" in data[1]


def test_eval_missing_model_is_a_clear_error(tmp_path, runs):
    import shutil

    broken = tmp_path / "run"
    shutil.copytree(runs["tensorf"], broken)
    (broken / "model.ckpt").unlink()
    res = CliRunner().invoke(laser, ["eval", str(broken)])
    assert res.exit_code == 2 and "not finished training" in res.output


def test_export_with_a_subset_of_the_classes(runs, tmp_path, generated):
    from laser_gs.export.ply import read_ply_classes

    classes = generated[1].classes
    subset = f"{classes[2]},{classes[0]}"
    res = CliRunner().invoke(laser, ["export", str(runs["gsplat"]), "--ply", str(tmp_path / "s.ply"),
                                     "--prompts", subset])
    assert res.exit_code == 0, res.output
    assert read_ply_classes(tmp_path / "s.ply") == [classes[2], classes[0]]
    assert PlyData.read(str(tmp_path / "s.ply"))["vertex"]["label"].max() <= 1


def test_unknown_prompt_without_clip_weights_is_a_clear_error(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))
    res = CliRunner().invoke(laser, ["export", str(runs["tensorf"]), "--ply", str(tmp_path / "u.ply"),
                                     "--prompts", "purple elephant"])
    assert res.exit_code == 2
    assert "purple elephant" in res.output and "CLIP" in res.output
