"""`laser batch`: plans are checked before anything runs; runs go through Ray (local, 2 CPUs) with the same
results as one after another; a broken scene fails alone; a rerun skips finished runs; a killed batch continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from laser_gs_cli.main import laser

TINY = '["--size", "64x48", "--views", "6", "--annotated", "2", "--dim", "32", "--seed", "{seed}"]'


def _plan(path: Path, extra: str = "", scenes: int = 2, backends: str = '["tensorf", "gsplat"]') -> Path:
    gen = "\n".join(f"s{i} = {TINY.format(seed=i)}" for i in range(scenes))
    path.write_text(f"backends = {backends}\nseeds = [0]\niters = 12\n{extra}\n[generate]\n{gen}\n")
    return path


@pytest.mark.parametrize("body, message", [
    ('backends = ["nerfacto"]\nscenes = ["."]', "unknown backend 'nerfacto'"),
    ('scenes = ["no/such/*"]', "matches no folder"),
    ('scenes = ["."]\nset = ["semantic.betta=1"]', "unknown setting semantic.betta"),
    ('scenes = [".', "not a valid TOML plan"),
    ('scene = ["."]', "unknown plan key 'scene'"),
])
def test_bad_plans_are_refused_before_anything_runs(tmp_path, body, message):
    plan = tmp_path / "plan.toml"
    plan.write_text(body)
    res = CliRunner().invoke(laser, ["batch", str(plan), "--out", str(tmp_path / "out"), "--no-ray"])
    assert res.exit_code == 2 and message in res.output and res.output.strip().count("\n") == 0, res.output
    assert not (tmp_path / "out" / "results.json").exists()


def _results(out: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads((out / "results.json").read_text())}


def test_ray_batch_matches_sequential_runs_and_resumes(tmp_path):
    pytest.importorskip("ray")
    (tmp_path / "broken").mkdir()  # a folder that is no scene: its runs fail, the others go on
    plan = _plan(tmp_path / "plan.toml", extra=f'scenes = ["{tmp_path / "broken"}"]\nlift = true', scenes=1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "laser_gs_cli.main", "batch", str(plan), "--out"]
    ray_run = subprocess.run(cmd + [str(tmp_path / "ray"), "--cpus-per-run", "1"], capture_output=True, text=True,
                             env=env, timeout=900)
    assert ray_run.returncode == 1, ray_run.stdout + ray_run.stderr  # the broken scene's runs failed
    res = _results(tmp_path / "ray")
    ok = {n: r for n, r in res.items() if r["status"] == "ok"}
    failed = {n for n, r in res.items() if r["status"] != "ok"}
    assert len(ok) == 4 and failed == {"broken/tensorf_fast_s0", "broken/gsplat_fast_s0",
                                       "broken/tensorf-lift_fast_s0", "broken/gsplat-lift_fast_s0"}
    assert "failed: broken/tensorf_fast_s0" in ray_run.stdout and "mIoU mean +- sd" in ray_run.stdout
    assert (tmp_path / "ray" / "results.csv").is_file() and (tmp_path / "ray" / "report.html").is_file()
    seq = subprocess.run(cmd + [str(tmp_path / "seq"), "--no-ray"], capture_output=True, text=True, env=env,
                         timeout=900)
    assert seq.returncode == 1
    for name, r in _results(tmp_path / "seq").items():
        if r["status"] == "ok":  # one thread per run either way: the same numbers
            assert abs(r["miou"] - ok[name]["miou"]) < 1e-6 and abs(r["psnr"] - ok[name]["psnr"]) < 1e-6, name
    t0 = time.time()
    again = subprocess.run(cmd + [str(tmp_path / "seq"), "--no-ray"], capture_output=True, text=True, env=env,
                           timeout=900)
    assert again.returncode == 1 and time.time() - t0 < 60  # finished runs are only read back


def test_a_killed_batch_continues(tmp_path):
    plan = _plan(tmp_path / "plan.toml", scenes=2, backends='["gsplat"]')
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "laser_gs_cli.main", "batch", str(plan), "--out", str(out), "--no-ray"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("*/gsplat_fast_s0/checkpoints/step_*.ckpt")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the run it started
    proc.wait()
    assert not (out / "results.json").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(r["status"] == "ok" for r in _results(out).values()) and len(_results(out)) == 2


def test_without_ray_runs_go_max_parallel_at_a_time_and_variants_after_their_base(tmp_path, monkeypatch):
    """The local pool (no Ray): two runs overlap, never three; a variant starts after its base has ended."""
    import threading

    from laser_gs import batch

    lock, live, peak, log = threading.Lock(), [0], [0], []

    def fake_task(spec: dict, out: str, threads: int) -> dict:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
            log.append(("start", spec["name"]))
        time.sleep(0.3)
        with lock:
            live[0] -= 1
            log.append(("end", spec["name"]))
        return {"name": spec["name"], "status": "ok"}

    monkeypatch.setattr(batch, "run_task", fake_task)
    runs = [batch.RunSpec("a/g", "a", "gsplat"), batch.RunSpec("b/g", "b", "gsplat"),
            batch.RunSpec("c/g", "c", "gsplat"), batch.RunSpec("a/g-lift", "a", "gsplat", base="a/g")]
    t0 = time.time()
    res = batch.execute(batch.Plan(runs, {}), tmp_path, max_parallel=2, use_ray=False)
    assert [r["name"] for r in res] == ["a/g", "b/g", "c/g", "a/g-lift"]
    assert peak[0] == 2 and time.time() - t0 < 4 * 0.3  # parallel, but never above the cap
    assert log.index(("end", "a/g")) < log.index(("start", "a/g-lift"))
    # a base outside the plan (a finished run on disk) is not waited for
    res = batch.execute(batch.Plan([batch.RunSpec("x/v", "x", "gsplat", base="x/on_disk")], {}), tmp_path,
                        max_parallel=2, use_ray=False)
    assert [r["name"] for r in res] == ["x/v"]
