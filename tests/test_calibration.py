"""Class calibration: per-prompt offsets so that every prompted class wins a region of the scene."""

from __future__ import annotations

import pytest
import torch

from laser_gs.semantics.calibration import PromptOffsets, class_offsets, coverage_offsets, kmeans, valley_threshold


def _confused_scene(n: int = 3000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[N, 4]`` and true classes of points in 4 regions; "apple" (1) scores below "book" (2) on the
    apple region too (by 0.02), but less so than on the book region (by 0.06): a prompt bias."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.arange(4).repeat_interleave(n // 4)
    base = torch.full((n, 4), 0.20)
    base[truth == 0, 0] = 0.30
    base[truth == 3, 3] = 0.30
    base[truth == 1, 1], base[truth == 1, 2] = 0.26, 0.28
    base[truth == 2, 1], base[truth == 2, 2] = 0.24, 0.30
    return base + 0.004 * torch.randn(n, 4, generator=g), truth


def test_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = (centres[:, None] + 0.1 * torch.randn(3, 200, 2, generator=g)).reshape(-1, 2)
    c, sizes = kmeans(x, 3)
    assert sorted(sizes.tolist()) == [200, 200, 200]
    assert torch.cdist(c, centres).min(dim=0).values.max() < 0.05


def test_coverage_raises_a_class_that_wins_nothing_on_its_closest_cluster():
    cent = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.5, 0.45], [0.1, 0.6, 0.4], [0.2, 0.3, 0.1]])
    sizes = torch.full((4,), 100.0)
    off = coverage_offsets(cent, sizes)
    assert off[0] == 0 and off[1] == 0 and off[2] == pytest.approx(0.05, abs=1e-3)
    win = (cent + off).argmax(dim=1)
    assert win.tolist() == [0, 2, 1, 1]  # class 2 takes the cluster where it was closest; the others keep theirs


def test_coverage_is_a_no_op_when_every_class_wins_and_never_takes_a_class_s_only_cluster():
    cent = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    assert torch.equal(coverage_offsets(cent, torch.ones(2)), torch.zeros(2))
    # class 1 wins nothing, but the only other cluster belongs to class 0 alone: no offset
    assert torch.equal(coverage_offsets(torch.tensor([[0.9, 0.1]]), torch.ones(1)), torch.zeros(2))
    # a cluster below min_share does not count as a region
    cent = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.1, 0.9]])
    off = coverage_offsets(cent, torch.tensor([1000.0, 1000.0, 1.0]))
    assert off[1] == pytest.approx(0.2, abs=1e-3)


def test_class_offsets_repair_a_prompt_biased_in_every_view():
    logits, truth = _confused_scene()
    before = (logits.argmax(1) == truth).float()
    assert before[truth == 1].mean() < 0.01  # the apple is "book" everywhere
    off = class_offsets(logits)
    assert off[0] == 0 and off[2] == 0 and off[3] == 0 and off[1] > 0
    after = ((logits + off).argmax(1) == truth).float()
    assert after[truth == 1].mean() > 0.95 and after[truth == 2].mean() > 0.95
    assert after.mean() > 0.97
    # invariant to a shared shift of a point's scores (only differences between classes count)
    assert torch.allclose(class_offsets(logits + 0.3 * torch.rand(len(logits), 1)), off, atol=2e-3)


def test_class_offsets_leave_a_well_separated_scene_alone():
    logits, truth = _confused_scene()
    logits[truth == 1, 1] += 0.05  # the apple now wins its own region
    assert torch.equal(class_offsets(logits), torch.zeros(4))


def test_prompt_offsets_match_rows_by_embedding():
    g = torch.Generator().manual_seed(0)
    text = torch.randn(3, 16, generator=g)
    po = PromptOffsets(text, torch.tensor([0.0, 0.02, 0.0]))
    assert po
    other = torch.randn(1, 16, generator=g)
    q = torch.cat([text[[2, 1]] * 3.0, other])  # reordered, rescaled, plus an unknown prompt
    assert torch.allclose(po.for_text(q), torch.tensor([0.0, 0.02, 0.0]))
    again = PromptOffsets.from_state(po.state())
    assert torch.equal(again.for_text(text), po.for_text(text))
    assert not PromptOffsets() and not PromptOffsets.from_state(None)
    assert torch.equal(PromptOffsets().for_text(text), torch.zeros(3))


def test_a_calibrated_run_segments_with_its_offsets_everywhere(generated, tmp_path):
    """The trainer calibrates (no-op or not, recorded); offsets survive the checkpoint; the label map, the
    logits, the exported point labels and the viewer's labels all use them."""
    import json

    from conftest import fit
    from laser_gs.export.labels import point_labels
    from laser_gs.viewer import ViewerModel

    scene, model = fit("gsplat", generated[0], tmp_path / "run", 40,
                       overrides=["semantic.method=lift", "gsplat.init_points=3000"])
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert "calibration" in log["stage_seconds"] and "class_offsets" in log
    text = model.text
    model.heads.prompt_offsets = PromptOffsets()
    plain = model.render(scene.cameras, 0, ("logits",), text)["logits"]
    offsets = torch.zeros(len(text))
    offsets[2] = 0.5  # large enough to change the picture
    model.heads.prompt_offsets = PromptOffsets(text, offsets)
    out = model.render(scene.cameras, 0, ("logits", "segmentation"), text)
    assert torch.allclose(out["logits"], plain + offsets, atol=1e-5)
    seg = model.render(scene.cameras, 0, ("segmentation",), text)["segmentation"]
    assert torch.equal(seg, out["segmentation"]) and (seg == 2).float().mean() > (plain.argmax(-1) == 2).float().mean()
    model.save(tmp_path / "m.ckpt")
    again = type(model).load(tmp_path / "m.ckpt")
    assert torch.equal(again.heads.prompt_offsets.for_text(text.cpu()), offsets)
    points = model.points(scene.cameras, scene.train_views)
    lab_plain, _ = point_labels(points.feature, None, text.cpu())
    lab, _ = point_labels(points.feature, None, text.cpu(), offsets=offsets)
    assert (lab == 2).sum() > (lab_plain == 2).sum()
    viewer = ViewerModel(points, model.classes, text, offsets=offsets)
    assert torch.equal(torch.from_numpy(viewer.labels()), lab)


def test_valley_threshold_splits_two_groups_where_they_are_sparsest():
    g = torch.Generator().manual_seed(0)
    v = torch.cat([torch.randn(700, generator=g) * 0.1 - 1.0, torch.randn(100, generator=g) * 0.1 + 0.5])
    t = valley_threshold(v, float(v.median()), 0.5)
    assert -0.6 < t < 0.2
    assert ((v > t) == (torch.arange(800) >= 700)).all()


def test_bench_calibration_reproduces_what_the_trainer_reported(outcome_runs, tmp_path):
    """scripts/bench_calibration.py recalibrates a finished run exactly as `laser train` did: its "after" is
    the run's own `laser eval` mIoU, and its offsets are the ones in train_log.json."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    run = outcome_runs["gsplat-lift"]
    out = tmp_path / "cal.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # the training's one thread
    res = subprocess.run([sys.executable, str(repo / "scripts" / "bench_calibration.py"), str(run), "--json",
                          str(out)], capture_output=True, text=True, timeout=600, cwd=repo, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads(out.read_text())[0]
    ev = json.loads((run / "eval.json").read_text())
    log = json.loads((run / "train_log.json").read_text())
    assert row["after"]["miou"] == pytest.approx(ev["miou"], abs=0.05)
    assert row["offsets"] == pytest.approx(log["class_offsets"])
    assert "->" in res.stdout
