"""The GPU check's measurements (run by scripts/gpu_check.sh after the CUDA tests).

    python scripts/gpu_check.py --out OUT [--dry-run] [--budget-s 420]

1. trains both backends on a generated scene with the ``default`` (paper) preset, its schedule compressed
   to ``--train-steps`` steps (wall time per stage and s/step measured, the full 45k-step schedule projected
   from them), peak GPU memory, PSNR and mIoU;
2. ``laser bench`` figures at the 3D-OVS evaluation resolution (504 x 378: its 4032 x 3024 photos at the
   paper's 1/8) and at 1080p, RGB and RGB + segmentation, for both trained runs and for a gsplat model
   grown to a real scene's Gaussian count (``--gaussians``, by jittered copies of the trained Gaussians);
3. the time to lift the CLIP features of every view onto those Gaussians (the ``lift`` step of stage 2);
4. ``OUT/gpu_check.json`` (every figure, device, driver, versions, the CUDA tests' counts) and
   ``OUT/gpu_check.md`` (a table to paste into docs/benchmarks.md).

``--dry-run`` does the same on the CPU at tiny sizes (CI proves the script works). Every step is guarded:
a failure is recorded in the JSON and the next step runs; the JSON is rewritten after each step; steps
that would start past ``--budget-s`` are skipped and recorded as such.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable


def _versions() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda_available": torch.cuda.is_available(), "machine": platform.machine()}
    try:
        import gsplat

        info["gsplat"] = gsplat.__version__
    except ImportError as exc:
        info["gsplat"] = f"missing ({exc})"
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30)
            info["driver"] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["driver"] = "nvidia-smi not available"
    else:
        info["device"] = "cpu (" + (platform.processor() or platform.machine()) + ")"
    return info


def _cuda_tests(path: Path) -> dict[str, Any]:
    """Counts from the JUnit XML the shell script's pytest run wrote (absent: not run)."""
    if not path.is_file():
        return {"ran": False}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"ran": True, **counts, "passed": passed,
            "failed": failed}


class Check:
    """Runs guarded steps against a wall-clock budget, rewriting the JSON after each."""

    def __init__(self, out: Path, budget_s: float):
        self.out, self.budget_s, self.t0 = out, budget_s, time.perf_counter()
        self.result: dict[str, Any] = {"steps": {}}

    def step(self, name: str, fn: Callable[[], Any], cost_s: float = 0.0) -> Any:
        elapsed = time.perf_counter() - self.t0
        if elapsed + cost_s > self.budget_s:
            self.result["steps"][name] = {"status": "skipped", "why": f"budget: {elapsed:.0f}s used of "
                                                                       f"{self.budget_s:.0f}s, needs ~{cost_s:.0f}s"}
            self.save()
            return None
        t = time.perf_counter()
        print(f"[gpu_check] {name} ...", flush=True)
        try:
            value = fn()
            self.result["steps"][name] = {"status": "ok", "seconds": time.perf_counter() - t}
        except Exception as exc:  # noqa: BLE001 - record and go on: one run must give as much as it can
            value = None
            self.result["steps"][name] = {"status": "failed", "seconds": time.perf_counter() - t,
                                          "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc(limit=6)}
            print(f"[gpu_check] {name} FAILED: {type(exc).__name__}: {exc}", flush=True)
        self.save()
        return value

    def save(self) -> None:
        self.result["elapsed_s"] = time.perf_counter() - self.t0
        (self.out / "gpu_check.json").write_text(json.dumps(self.result, indent=2, default=str))


def _train(scene: Path, runs: Path, backend: str, preset: str, steps: int, device: str) -> dict[str, Any]:
    import torch

    from laser_gs.evaluation import evaluate_run
    from laser_gs.run import RunConfig
    from laser_gs.train import load_run_inputs, train_run
    from laser_gs.training.trainer import read_train_log

    run = runs / backend
    shutil.rmtree(run, ignore_errors=True)
    config = RunConfig(backend=backend, scene=str(scene), preset=preset, iters=steps, device=device)
    inputs = load_run_inputs(config)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = train_run(config, run, inputs=inputs)
    wall = time.perf_counter() - t0
    log = read_train_log(run)
    settings = log["settings"]
    iters = {"reconstruct": settings[backend]["iters"], "semantics": settings["semantic"]["iters"]}
    from laser_gs.backends.registry import get_backend
    from laser_gs.training.settings import TrainingSettings

    full = TrainingSettings.resolve(get_backend(backend), preset)
    full_iters = {"reconstruct": full.model.iters, "semantics": full.semantic.iters}
    # stages with steps (the lift and the class calibration are one-off and have none)
    per_step = {k: v / max(1, iters[k]) for k, v in log["stage_seconds"].items() if k in iters}
    ev = evaluate_run(model, inputs[0], inputs[1], model.text, timing=False)
    return {"run": str(run), "wall_s": wall, "stage_seconds": log["stage_seconds"], "steps": iters,
            "s_per_step": per_step, "projected_full_schedule_s": {k: per_step[k] * full_iters[k] for k in per_step},
            "full_schedule_steps": full_iters, "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2 ** 20
                                                               if device == "cuda" else None),
            "train_log_peak_mb": log.get("peak_memory_mb"), "psnr": ev["psnr"], "miou": ev.get("miou"),
            "teacher_miou": (ev.get("teacher") or {}).get("miou"), "gaussians": log.get("gaussians")}


def _grow_gaussians(run: Path, out: Path, count: int, device: str) -> dict[str, Any]:
    """A copy of a gsplat run whose model has ``count`` Gaussians: jittered copies of the trained ones."""
    import torch

    from laser_gs.backends.registry import MODEL_FILE, get_backend

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("checkpoints", "eval"))
    model = get_backend("gsplat").load(out / MODEL_FILE, device=device)
    n = model.params["means"].shape[0]
    g = torch.Generator(device="cpu").manual_seed(0)
    idx = torch.randint(n, (count,), generator=g)
    model.select_gaussians(idx)  # every per-Gaussian state (lifted / fused features too) follows
    with torch.no_grad():
        p = model.params
        scale = torch.exp(p["scales"]).mean(-1, keepdim=True)
        p["means"] += scale * torch.randn(count, 3, generator=g).to(scale.device)
        p["scales"] -= 0.5 * torch.log(torch.tensor(count / n))  # keep coverage: smaller when more
    model.save(out / MODEL_FILE)
    return {"run": str(out), "gaussians": count, "from": n}


def _bench(runs: list[Path], size: tuple[int, int], frames: int, device: str) -> list[dict[str, Any]]:
    from laser_gs.bench import add_speedups, bench_run

    results = [bench_run(r, size, frames, device, scores=False) for r in runs]
    add_speedups(results)
    return results


def _lift_time(run: Path, device: str) -> dict[str, Any]:
    import torch

    from laser_gs.backends.registry import MODEL_FILE, get_backend
    from laser_gs.run import read_run_config
    from laser_gs.train import load_run_inputs
    from laser_gs.training.semantic import FeatureTargets

    config = read_run_config(run)
    scene, features = load_run_inputs(config)
    model = get_backend("gsplat").load(run / MODEL_FILE, device=device)
    model.cameras, model.train_views = scene.cameras.to(model.device), scene.train_views
    targets = FeatureTargets(features, scene, model.device)
    model.lift_targets(targets)  # warm-up (kernels, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.lift_targets(targets)
    if device == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - t0, "gaussians": int(model.params["means"].shape[0]),
            "views": len(scene.train_views), "scale": model.cfg.lift_scale}


def _table(r: dict[str, Any]) -> str:
    v = r.get("versions", {})
    lines = [f"GPU check on {v.get('device')} (driver {v.get('driver', '-')}, torch {v.get('torch')}, gsplat "
             f"{v.get('gsplat')}){' -- DRY RUN on CPU at tiny sizes' if r.get('dry_run') else ''}.", ""]
    t = r.get("cuda_tests", {})
    if t.get("ran"):
        lines += [f"CUDA tests: {t['passed']} passed, {t['failures'] + t['errors']} failed, {t['skipped']} skipped"
                  + (f" ({', '.join(t['failed'])})" if t.get("failed") else "") + ".", ""]
    train = r.get("train", {})
    if train:
        lines += ["| backend | steps (1 / 2) | s/step (1 / 2) | projected full schedule (min) | peak GPU MB | "
                  "PSNR dB | mIoU % | teacher % |", "|---|---|---|---|---|---|---|---|"]
        for b, x in train.items():
            if not x:
                continue
            sp, pr, st = x["s_per_step"], x["projected_full_schedule_s"], x["steps"]
            lines.append(f"| {b} | {st['reconstruct']} / {st['semantics']} | {sp.get('reconstruct', 0):.4f} / "
                         f"{sp.get('semantics', 0):.4f} | {sum(pr.values()) / 60:.1f} | "
                         f"{x['peak_gpu_mb'] or 0:.0f} | {x['psnr']:.2f} | {x['miou'] or 0:.1f} | "
                         f"{x['teacher_miou'] or 0:.1f} |")
        lines.append("")
    bench = r.get("bench", {})
    if bench:
        lines += ["| model | resolution | RGB ms | RGB FPS | RGB + seg ms | RGB + seg FPS | peak MB |",
                  "|---|---|---|---|---|---|---|"]
        for label, rows in bench.items():
            for x in rows or []:
                w, h = x["resolution"]
                lines.append(f"| {Path(x['run']).name} | {w}x{h} ({label}) | {x['ms_rgb']:.2f} | {x['fps_rgb']:.1f} | "
                             f"{x.get('ms_segmentation', 0):.2f} | {x.get('fps_segmentation', 0):.1f} | "
                             f"{x.get('peak_mb_segmentation') or 0:.0f} |")
        lines.append("")
    lift = r.get("lift")
    if lift:
        lines.append(f"Lift: {lift['views']} views onto {lift['gaussians']:,} Gaussians in {lift['seconds']:.2f} s.")
    steps = r.get("steps", {})
    bad = {k: v for k, v in steps.items() if v.get("status") != "ok"}
    if bad:
        lines += ["", "Steps not completed: " + "; ".join(f"{k}: {v['status']} ({v.get('error') or v.get('why')})"
                                                          for k, v in bad.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("gpu_check_out"))
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: proves the script works")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip steps that would start past this")
    ap.add_argument("--train-steps", type=int, default=None, help="steps per backend (default 3000; dry 12)")
    ap.add_argument("--gaussians", type=int, default=None, help="Gaussians of the grown model (default 500k)")
    args = ap.parse_args(argv)
    import torch

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    if not dry and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here; use --dry-run on a CPU machine")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, args.budget_s)
    r = check.result
    r.update(dry_run=dry, date=time.strftime("%Y-%m-%d"), versions=_versions(),
             cuda_tests=_cuda_tests(out / "cuda_tests.xml"))
    steps = args.train_steps or (12 if dry else 3000)
    count = args.gaussians or (5000 if dry else 500_000)
    preset = "fast" if dry else "default"
    sizes = {"3D-OVS eval 1/8": (504, 378), "1080p": (1920, 1080)} if not dry else {"tiny": (64, 48), "wide": (96, 54)}
    frames = 1 if dry else 10
    work = out / "work"
    scene = work / "scene"

    def make_scene() -> None:
        from laser_gs.synthetic import SceneSpec, make_scene as generate

        spec = SceneSpec(width=64, height=48, views=6, annotated=2, feature_dim=32) if dry else SceneSpec()
        shutil.rmtree(scene, ignore_errors=True)
        generate(scene, spec)

    check.step("scene", make_scene)
    r["train"] = {}
    for backend in ("gsplat", "tensorf"):  # gsplat first: its CUDA build happens in the first rasterization
        r["train"][backend] = check.step(f"train_{backend}",
                                         lambda b=backend: _train(scene, work / "runs", b, preset, steps, device),
                                         cost_s=20 if dry else 90)
    trained = [work / "runs" / b for b in ("tensorf", "gsplat") if r["train"].get(b)]
    grown = None
    if r["train"].get("gsplat"):
        grown_info = check.step("grow_gaussians", lambda: _grow_gaussians(work / "runs" / "gsplat", work / "runs" /
                                                                          f"gsplat_{count}", count, device))
        grown = Path(grown_info["run"]) if grown_info else None
    r["bench"] = {}
    for label, size in sizes.items():
        runs = trained + ([grown] if grown else [])
        r["bench"][label] = check.step(f"bench_{label}", lambda s=size, rs=runs: _bench(rs, s, frames, device),
                                       cost_s=10 if dry else 40)
    if grown is not None:
        r["lift"] = check.step("lift", lambda: _lift_time(grown, device), cost_s=5 if dry else 30)
    (out / "gpu_check.md").write_text(_table(r))
    check.save()
    print((out / "gpu_check.md").read_text())
    return r


if __name__ == "__main__":
    main()
