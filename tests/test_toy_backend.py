"""The backend protocol is small: a ~150-line voxel backend (tests/toy_backend.py) trains with the shared
trainer, and `laser eval` / `laser export` work on it through the registry like on the built-in backends."""

from __future__ import annotations

import json

from click.testing import CliRunner
from plyfile import PlyData

import toy_backend  # noqa: F401  (registers "toy-voxels")
from conftest import fit
from laser_gs.backends.registry import get_backend, list_backends
from laser_gs.export.ply import read_ply_classes
from laser_gs_cli.main import laser


def test_toy_backend_trains_evaluates_and_exports(generated, tmp_path):
    assert "toy-voxels" in list_backends() and get_backend("toy-voxels") is toy_backend.ToyVoxelBackend
    scene_dir, _ = generated
    run = tmp_path / "run"
    scene, model = fit("toy-voxels", scene_dir, run, iters=160, seed=0)
    log = json.loads((run / "train_log.json").read_text())
    mse = [h["mse"] for h in log["history"] if "mse" in h]
    feat = [h["feat"] for h in log["history"] if "feat" in h]
    assert mse[-1] < 0.8 * mse[0], mse  # the photometric loss falls (first record: step 25)
    assert feat[-1] < feat[0], feat  # and so does the distillation loss of stage 2
    assert set(log["stage_seconds"]) == {"reconstruct", "semantics", "calibration"}

    res = CliRunner().invoke(laser, ["eval", str(run), "--json", str(tmp_path / "m.json"), "--no-timing"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["backend"] == "toy-voxels" and metrics["psnr"] > 15, metrics["psnr"]
    assert len(metrics["per_class"]) == len(scene.classes) and metrics["miou"] > 0

    res = CliRunner().invoke(laser, ["export", str(run), "--ply", str(tmp_path / "toy.ply")])
    assert res.exit_code == 0, res.output
    vertex = PlyData.read(str(tmp_path / "toy.ply"))["vertex"]
    assert vertex.count > 100 and {"x", "red", "label", "label_score"} <= {p.name for p in vertex.properties}
    assert read_ply_classes(tmp_path / "toy.ply") == scene.classes
