"""Benchmark scripts run end to end in --quick mode (so they do not rot); full runs are manual."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=REPO, capture_output=True,
                          text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=900)


def test_bench_backends_quick(tmp_path):
    doc_before = (REPO / "docs" / "benchmarks.md").read_text()
    out = _run("bench_backends.py", "--quick", "--out", str(tmp_path / "b"), "--json", str(tmp_path / "b.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    assert set(data["backends"]) == {"tensorf", "gsplat"}
    for r in data["backends"].values():
        assert r["psnr"] > 0 and 0 <= r["miou"] <= 100 and r["render_ms_segmentation"] > 0
    assert data["gsplat_speedup_segmentation"] > 0
    assert all(r["train_peak_mb"] > 0 for r in data["backends"].values())
    assert set(data["fps_vs_resolution"]) == {"tensorf", "gsplat"}
    from PIL import Image

    for name in ("curve_test_psnr.png", "fps_vs_resolution.png"):
        assert Image.open(tmp_path / "b" / "figures" / name).size == (640, 400)
    assert (REPO / "docs" / "benchmarks.md").read_text() == doc_before, "--quick must not touch the docs"


def test_ablation_quick(tmp_path):
    out = _run("ablation.py", "--quick", "--backends", "gsplat", "--out", str(tmp_path / "a"),
               "--json", str(tmp_path / "a.json"), "--sweeps")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((tmp_path / "a.json").read_text())
    sweeps = data["sweeps"]["gsplat"]
    assert set(sweeps) == {"alpha", "beta", "gamma"}
    assert set(sweeps["alpha"]) == {"0.0", "0.2"} and set(sweeps["gamma"]) == {"0.0", "0.5"}
    rows = data["backends"]["gsplat"]
    assert list(rows) == ["base distillation", "+ text augmentation (full)"]
    assert all(0 <= r["feature_miou"] <= 100 for r in rows.values())


def test_bench_attention_quick(tmp_path):
    out = _run("bench_attention.py", "--quick", "--json", str(tmp_path / "att.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "att.json").is_file()


def test_bench_preprocess_quick(tmp_path):
    out = _run("bench_preprocess.py", "--quick", "--out", str(tmp_path / "p"), "--json", str(tmp_path / "p.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    # a pyramid of hundreds of crops costs more than one dense pass, in time and in storage
    assert data["pyramid"]["crops_per_view"] > 100
    assert data["time_ratio"] > 1 and data["bytes_ratio"] > 1


def test_gpu_check_dry_run(tmp_path):
    """scripts/gpu_check.sh --dry-run: the GPU check's steps on the CPU at tiny sizes, JSON and table written."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", str(tmp_path / "g")], cwd=REPO,
                         capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                                             "LASER_PYTHON": sys.executable}, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads((tmp_path / "g" / "gpu_check.json").read_text())
    assert data["dry_run"] and data["cuda_tests"]["ran"] and data["cuda_tests"]["tests"] >= 4
    assert all(s["status"] == "ok" for s in data["steps"].values()), data["steps"]
    for backend in ("tensorf", "gsplat"):
        t = data["train"][backend]
        assert t["s_per_step"]["reconstruct"] > 0 and t["projected_full_schedule_s"]["semantics"] > 0
    assert {r["run"].rsplit("/", 1)[-1] for r in data["bench"]["tiny"]} == {"tensorf", "gsplat", "gsplat_5000"}
    assert data["lift"]["gaussians"] == 5000 and data["lift"]["seconds"] > 0
    table = (tmp_path / "g" / "gpu_check.md").read_text()
    assert "| gsplat_5000 | 64x48 (tiny) |" in table and "DRY RUN" in table


def test_bench_quality_quick(tmp_path):
    out = _run("bench_quality.py", "--quick", "--out", str(tmp_path / "q"), "--reruns", "1", "--parallel", "2",
               "--json", str(tmp_path / "q.json"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads((tmp_path / "q.json").read_text())
    names = {(r["scene"], r["method"], r["seed"]) for r in data["runs"]}
    assert ("tabletop_s0", "gsplat-lift", 0) in names and ("tabletop_s0", "tensorf", 1) in names
    assert len(names) == 2 * 4 + 2  # 2 scenes x (2 backends + 2 lifts), and seed 1 of the first scene
    assert "mIoU mean +- sd over scenes" in out.stdout and "Spread over seeds on tabletop_s0" in out.stdout
    assert set(data["fusion_bounds"]) == {"tabletop_s0", "tabletop_s1"} and "| fusion bound |" in out.stdout
    assert (tmp_path / "q" / "tabletop_s0" / "fusion_bound.json").is_file()  # cached for the rerun
    again = _run("bench_quality.py", "--quick", "--out", str(tmp_path / "q"), "--reruns", "1")
    assert again.returncode == 0  # finished runs are reused
