"""`kill -9` during `laser train`, then `--resume`: the result matches an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from laser_gs.backends.registry import MODEL_FILE, get_backend
from laser_gs.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _train(scene: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "laser_gs_cli.main", "train", "--backend", "gsplat", "--scene", str(scene),
            "--out", str(out), "--iters", "40", "--checkpoint-every", "2", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr


def _steps(run: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.ckpt"))


def test_kill_9_then_resume_matches_uninterrupted_run(generated, tmp_path):
    scene = generated[0]
    _run(_train(scene, tmp_path / "reference"))
    victim = tmp_path / "victim"
    proc = subprocess.Popen(_train(scene, victim), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        steps = _steps(victim) if (victim / "checkpoints").is_dir() else []
        if steps and steps[-1] >= 10:  # well into training, stage 1 or 2
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make the run longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _steps(victim)[-1]
    assert not (victim / MODEL_FILE).exists() and killed_at < 40
    _run(_train(scene, victim, "--resume"))
    ref = get_backend("gsplat").load(tmp_path / "reference" / MODEL_FILE)
    res = get_backend("gsplat").load(victim / MODEL_FILE)
    assert ref.params["means"].shape == res.params["means"].shape
    # single-threaded (OMP_NUM_THREADS=1 above), resuming is bit-exact
    for k, v in ref.params.items():
        assert torch.equal(v, res.params[k]), k
    for (k, a), b in zip(ref.heads.state_dict().items(), res.heads.state_dict().values()):
        assert torch.equal(a, b), k
    assert ref.field is not None and res.field is not None  # stage 2's spatial semantic field
    for (k, a), b in zip(ref.field.state_dict().items(), res.field.state_dict().values()):
        assert torch.equal(a, b), k
    assert int(load_checkpoint(victim / "checkpoints" / f"step_{40:08d}.ckpt")["step"]) == 40
