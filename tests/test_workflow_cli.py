"""End-to-end CLI: train both backends briefly, then eval, export and bench through the registry."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from plyfile import PlyData

from laser_gs_cli.main import laser


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
    # the way out that needs no CLIP: the run's own classes, listed in the message
    assert "Or use the run's classes, which need no CLIP: brick wall, wooden floor" in res.output
    assert "--features precomputed" not in res.output and res.output.strip().count("\n") == 0


def test_prompts_match_the_runs_classes_ignoring_case_and_spaces(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))  # no CLIP: only the run's classes can work
    res = CliRunner().invoke(laser, ["segment", str(runs["gsplat"]), "--prompts", " Red  Apple,BLUE MUG",
                                     "--views", "0", "--out", str(tmp_path / "seg")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(laser, ["segment", str(runs["gsplat"]), "--prompts", "red apple,Red Apple"])
    assert res.exit_code == 2 and "given twice" in res.output


# ---------------------------------------------------------------------------- open-vocabulary workflows
@pytest.mark.parametrize("backend", ["tensorf", "gsplat"])
def test_segment_writes_label_maps_overlays_and_heat_maps(runs, backend, tmp_path, generated):
    import numpy as np
    from PIL import Image

    classes = generated[1].classes
    prompts = [classes[1], classes[0]]
    out = tmp_path / "seg"
    res = CliRunner().invoke(laser, ["segment", str(runs[backend]), "--prompts", ",".join(prompts), "--views", "0,2",
                                     "--out", str(out)])
    assert res.exit_code == 0, res.output
    from laser_gs.data import load_scene

    scene = load_scene(generated[0])
    for v in (0, 2):
        name = scene.image_names[v]
        labels = np.load(out / f"{name}_labels.npy")
        assert labels.shape == (scene.height, scene.width) and labels.min() >= 0 and labels.max() < len(prompts)
        assert Image.open(out / f"{name}_labels.png").size == (scene.width, scene.height)
        assert (out / f"{name}_overlay.png").is_file()
        for c, p in enumerate(prompts):
            assert (out / f"{name}_relevancy_{c}_{p.replace(' ', '_')}.png").is_file()
    assert not (out / f"{scene.image_names[1]}_labels.npy").exists()


def test_segment_heads_agree_with_evaluation(runs, tmp_path, generated):
    """`segment --views annotated` with the run's classes predicts what `eval` scores."""
    import numpy as np

    from laser_gs.evaluation import evaluate_run
    from laser_gs.metrics import segmentation_scores
    from laser_gs.run import open_run

    classes = generated[1].classes
    for head in ("label", "ensemble"):
        out = tmp_path / head
        res = CliRunner().invoke(laser, ["segment", str(runs["tensorf"]), "--prompts", ",".join(classes),
                                         "--head", head, "--out", str(out)])
        assert res.exit_code == 0, res.output
        _, backend, scene = open_run(runs["tensorf"])
        preds = {v: torch.from_numpy(np.load(out / f"{scene.image_names[v]}_labels.npy").astype(np.int64))
                 for v in scene.annotated_views}
        mine = segmentation_scores(preds, scene.gt_masks, scene.classes)["miou"]
        ev = evaluate_run(backend, scene, None, backend.text, timing=False)
        assert mine == pytest.approx(ev["heads"][head]["miou"], abs=1e-6)


def test_segment_bad_views_and_missing_run(runs, tmp_path):
    res = CliRunner().invoke(laser, ["segment", str(runs["gsplat"]), "--prompts", "a", "--views", "0,99"])
    assert res.exit_code == 2 and "0.." in res.output
    res = CliRunner().invoke(laser, ["segment", str(tmp_path / "nope"), "--prompts", "a"])
    assert res.exit_code == 2 and "config.json" in res.output


@pytest.mark.parametrize("backend", ["tensorf", "gsplat"])
def test_query_selects_the_points_of_one_class(runs, backend, tmp_path, generated):
    from laser_gs.run import open_run
    from laser_gs.semantics.losses import segmentation_logits

    config, model, scene = open_run(runs[backend])
    points = model.points(scene.cameras, scene.train_views)
    offsets = model.heads.prompt_offsets.for_text(model.text)  # the run's class calibration, as labels use it
    winner = (segmentation_logits(points.feature, model.text) + offsets).argmax(-1)
    target = int(torch.bincount(winner, minlength=len(model.classes)).argmax())
    prompt = model.classes[target]
    expected = int((winner == target).sum())
    ply = tmp_path / "q.ply"
    res = CliRunner().invoke(laser, ["query", str(runs[backend]), prompt, "--ply", str(ply)])
    assert res.exit_code == 0, res.output
    # at threshold 0.5 against the other classes, selected <=> the prompt is the point's best class
    assert f"{expected} of {len(points)} points selected" in res.output
    vertex = PlyData.read(str(ply))["vertex"]
    assert vertex.count == expected
    if backend == "gsplat":
        from laser_gs.export.ply import GAUSSIAN_PROPERTIES

        assert [p.name for p in vertex.properties][:len(GAUSSIAN_PROPERTIES)] == GAUSSIAN_PROPERTIES
    res = CliRunner().invoke(laser, ["query", str(runs[backend]), prompt, "--threshold", "1.0", "--ply",
                                     str(tmp_path / "none.ply")])
    assert res.exit_code == 2 and "nothing matched" in res.output and not (tmp_path / "none.ply").exists()


def test_query_canonical_negatives_need_clip(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))
    res = CliRunner().invoke(laser, ["query", str(runs["gsplat"]), "anything", "--negatives", "canonical"])
    assert res.exit_code == 2 and "CLIP" in res.output
    res = CliRunner().invoke(laser, ["query", str(runs["gsplat"]), "  "])
    assert res.exit_code == 2 and "empty" in res.output


@pytest.mark.parametrize("backend", ["tensorf", "gsplat"])
def test_render_spiral_frames_and_gif(runs, backend, tmp_path):
    from PIL import Image

    out = tmp_path / "frames"
    res = CliRunner().invoke(laser, ["render", str(runs[backend]), "--path", "spiral", "--frames", "3",
                                     "--out", str(out), "--size", "48x36"])
    assert res.exit_code == 0, res.output
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 3
    gif = Image.open(out / "render.gif")
    assert gif.n_frames == 3
    assert Image.open(frames[0]).size[1] >= 36  # render | overlay | legend, legend may be taller


def test_render_path_train_caps_at_frames(runs, tmp_path):
    out = tmp_path / "train"
    res = CliRunner().invoke(laser, ["render", str(runs["gsplat"]), "--path", "train", "--frames", "2",
                                     "--out", str(out), "--no-gif"])
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("frame_*.png"))) == 2 and not (out / "render.gif").exists()


# ---------------------------------------------------------------------------- reports
def _assert_self_contained(html: str) -> None:
    import re

    assert "<table>" in html
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(s.startswith("data:image/png;base64,") for s in sources), sources


def test_eval_and_bench_write_self_contained_reports(runs, tmp_path):
    res = CliRunner().invoke(laser, ["eval", str(runs["gsplat"]), "--no-timing"])
    assert res.exit_code == 0, res.output
    html = (runs["gsplat"] / "eval" / "report.html").read_text()
    _assert_self_contained(html)
    assert html.count("<img") >= 1 and "mIoU" in html
    res = CliRunner().invoke(laser, ["bench", str(runs["tensorf"]), str(runs["gsplat"]), "--frames", "1",
                                     "--size", "32x24", "--json", str(tmp_path / "b.json")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report.html").read_text()
    _assert_self_contained(html)
    assert "gsplat" in html and "tensorf" in html


# ---------------------------------------------------------------------------- safety
def test_disk_full_while_exporting_is_a_clear_error(runs, tmp_path, monkeypatch):
    import errno

    import laser_gs.atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(laser_gs.atomic.os, "fsync", full)
    ply = tmp_path / "out" / "x.ply"
    res = CliRunner().invoke(laser, ["export", str(runs["gsplat"]), "--ply", str(ply)])
    assert res.exit_code == 2 and "no space left" in res.output and "x.ply" in res.output
    assert list((tmp_path / "out").iterdir()) == []  # neither the file nor a temp file is left


def test_run_from_another_version_is_refused(runs, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(runs["gsplat"], old)
    cfg = json.loads((old / "config.json").read_text())
    cfg.update(run_format=0, laser_gs_version="0.0.1")
    (old / "config.json").write_text(json.dumps(cfg))
    for cmd in (["eval", str(old)], ["segment", str(old), "--prompts", "a"], ["render", str(old)]):
        res = CliRunner().invoke(laser, cmd)
        assert res.exit_code == 2 and "run format" in res.output and "retrain" in res.output, cmd


def test_max_memory_gb_caps_chunks_without_changing_results(runs):
    from laser_gs.memory import fit_chunk, set_memory_limit
    from laser_gs.run import open_run

    _, backend, scene = open_run(runs["tensorf"])
    ref = backend.render(scene.cameras, 0, ("rgb", "logits"), backend.text)
    try:
        set_memory_limit(0.001)  # ~1 MB: tensorf renders in chunks of 64 rays
        assert fit_chunk(8192, 64 * 512 * 4, minimum=64) == 64
        capped = backend.render(scene.cameras, 0, ("rgb", "logits"), backend.text)
    finally:
        set_memory_limit(None)
    assert fit_chunk(8192, 64 * 512 * 4) == 8192
    assert torch.allclose(ref["rgb"], capped["rgb"], atol=1e-5)
    assert torch.allclose(ref["logits"], capped["logits"], atol=1e-4)
    res = CliRunner().invoke(laser, ["eval", str(runs["tensorf"]), "--no-timing", "--max-memory-gb", "0"])
    assert res.exit_code == 2


def test_corrupted_model_and_escaping_scene_paths_are_refused_by_the_cli(runs, tmp_path):
    import shutil

    import numpy as np

    broken = tmp_path / "run"
    shutil.copytree(runs["gsplat"], broken)
    data = bytearray((broken / "model.ckpt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (broken / "model.ckpt").write_bytes(bytes(data))
    res = CliRunner().invoke(laser, ["eval", str(broken), "--no-timing"])
    assert res.exit_code == 2 and "model.ckpt" in res.output and "Traceback" not in res.output
    scene = tmp_path / "evil"
    scene.mkdir()
    (scene / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": [
        {"file_path": "../../etc/passwd", "transform_matrix": np.eye(4).tolist()}]}))
    res = CliRunner().invoke(laser, ["inspect", str(scene)])
    assert res.exit_code == 2 and "outside the scene folder" in res.output


def test_clip_weights_option_encodes_new_prompts_with_the_given_file(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))
    bad = tmp_path / "not_clip.pt"
    bad.write_bytes(b"not a checkpoint")
    for cmd in (["segment", str(runs["gsplat"]), "--prompts", "purple elephant", "--views", "0"],
                ["query", str(runs["tensorf"]), "purple elephant"]):
        res = CliRunner().invoke(laser, cmd + ["--clip-weights", str(bad)])
        assert res.exit_code == 2 and str(bad) in res.output and "Traceback" not in res.output, res.output


def test_a_run_without_class_text_encodes_every_prompt_with_clip(runs):
    """Features extracted for a scene without classes.txt carry no text: the run has a semantic field but no
    classes, so prompts (even ones that look like a class) go through CLIP instead of being refused."""
    from laser_gs.prompts import prompt_embeddings
    from laser_gs.run import open_run

    config, backend, _ = open_run(runs["gsplat"])
    backend.text, backend.classes = None, []
    calls = []

    class FakeClip:
        def encode_text(self, prompts):
            calls.append(list(prompts))
            return torch.ones(len(prompts), backend.heads.dim)

    names, text = prompt_embeddings(backend, config, ["fern", "wall"], clip_loader=FakeClip)
    assert names == ["fern", "wall"] and text.shape == (2, backend.heads.dim) and calls == [["fern", "wall"]]
