"""``laser batch``: many trainings (scenes x backends x presets x seeds x settings) on Ray, or one after another.

A plan is a TOML file::

    scenes = ["data/*", "../more/bed"]     # scene folders or globs, relative to the plan file
    backends = ["tensorf", "gsplat"]
    presets = ["fast"]
    seeds = [0, 1]
    iters = 300                            # optional, as `laser train --iters`
    features = "precomputed"               # as `laser train --features`
    set = ["trainer.eval_every=0"]         # settings for every run
    export = false                         # also write RUN/scene.ply
    lift = false                           # also lift every run's stage 1 (semantic.method=lift)

    [grid]                                 # every combination is a run
    "semantic.beta" = [0.3, 0.5]

    [generate]                             # scenes to generate first (`laser make-scene` arguments)
    tiny_a = ["--seed", "0", "--size", "96x72"]

Each run is ``train -> eval (-> export)`` in its own ``laser`` process with its own thread count, as a Ray
task with the requested CPUs and GPUs (``--address`` joins a cluster; Ray's launchers start those), or, without
Ray, ``--max-parallel`` at a time from this process (one after another by default). Runs are folders under the
batch folder named from their settings; finished ones (a model and an eval) are skipped, interrupted ones
continue with ``--resume``, a failing run is reported without stopping the others.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from laser_gs.errors import LaserError
from laser_gs.safety import plain_name



@dataclass
class RunSpec:
    """One training of a batch: where it goes and what ``laser train`` gets."""

    name: str
    scene: str
    backend: str
    preset: str = "fast"
    seed: int = 0
    overrides: list[str] = field(default_factory=list)
    iters: int | None = None
    features: str = "precomputed"
    export: bool = False
    base: str | None = None  # a run whose stage 1 this one continues (the lift variant)
    label: str | None = None  # the method's name in tables (default: the backend, "-lift" for a lift)

    @property
    def method(self) -> str:
        if self.label:
            return self.label
        return self.backend + ("-lift" if any(o == "semantic.method=lift" for o in self.overrides) else "")


@dataclass
class Plan:
    """The expanded runs of a plan file and the scenes to generate first."""

    runs: list[RunSpec]
    generate: dict[str, list[str]] = field(default_factory=dict)


def _slug(overrides: list[str]) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.]+", "-", o) for o in overrides)


def _scene_labels(scenes: list[Path]) -> dict[Path, str]:
    """Run-folder names of the scenes: the folder's name, with a short hash of its resolved path where two
    different scenes share a name (``a/s`` and ``b/s`` must not share runs)."""
    import hashlib

    by_name: dict[str, set[Path]] = {}
    for scene in scenes:
        by_name.setdefault(scene.name, set()).add(scene.resolve())
    return {scene: scene.name if len(by_name[scene.name]) == 1 else
            f"{scene.name}-{hashlib.sha1(str(scene.resolve()).encode()).hexdigest()[:6]}" for scene in scenes}


def load_plan(path: Path, out: Path) -> Plan:
    """Read and check a plan: an unknown backend, preset or setting, a missing scene or a malformed file is a
    :class:`LaserError` before anything runs."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    from laser_gs.backends.registry import get_backend
    from laser_gs.training.settings import TrainingSettings

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LaserError(f"{path}: plan file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LaserError(f"{path}: not a valid TOML plan ({exc})") from None
    known = {"scenes", "backends", "presets", "seeds", "iters", "features", "set", "export", "lift", "grid",
             "generate"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise LaserError(f"{path}: unknown plan key {unknown[0]!r}; valid keys: {', '.join(sorted(known))}")

    def listed(key: str, default: list, kind: type) -> list:
        value = data.get(key, default)
        value = value if isinstance(value, list) else [value]
        if not value or not all(isinstance(v, kind) and not isinstance(v, bool) or kind is bool for v in value):
            raise LaserError(f"{path}: '{key}' must be a non-empty list of {kind.__name__}s")
        return value

    generate = data.get("generate", {})
    if not isinstance(generate, dict) or not all(isinstance(v, list) for v in generate.values()):
        raise LaserError(f"{path}: [generate] maps scene names to lists of `laser make-scene` arguments")
    for name in generate:  # generated scenes live inside --out, whatever the plan says
        plain_name(name, f"{path}: [generate] scene name")
    scenes: list[Path] = [out / "scenes" / name for name in generate]
    for pattern in listed("scenes", [], str) if "scenes" in data else []:
        full = pattern if os.path.isabs(pattern) else str(path.parent / pattern)
        matches = sorted(Path(p) for p in glob.glob(full) if Path(p).is_dir())
        if not matches:
            raise LaserError(f"{path}: scene {pattern!r} matches no folder (relative to the plan file)")
        scenes += matches
    if not scenes:
        raise LaserError(f"{path}: the plan names no scene ('scenes' or [generate])")
    backends = listed("backends", ["tensorf", "gsplat"], str)
    presets = listed("presets", ["fast"], str)
    seeds = listed("seeds", [0], int)
    common = listed("set", [""], str) if "set" in data else []
    grid = data.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise LaserError(f"{path}: [grid] maps settings to non-empty lists of values")
    combos = [[f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in zip(grid, values)]
              for values in itertools.product(*grid.values())] or [[]]
    iters = data.get("iters")
    if iters is not None and (not isinstance(iters, int) or iters < 1):
        raise LaserError(f"{path}: 'iters' must be a positive integer")
    features = data.get("features", "precomputed")
    if features not in ("clip", "precomputed", "none"):
        raise LaserError(f"{path}: 'features' must be clip, precomputed or none")
    labels = _scene_labels(scenes)
    runs: list[RunSpec] = []
    seen: dict[tuple, str] = {}
    for scene, backend, preset, seed, combo in itertools.product(scenes, backends, presets, seeds, combos):
        cls = get_backend(backend)  # unknown backends list the available ones
        overrides = common + combo
        TrainingSettings.resolve(cls, preset, overrides, iters, semantics=features != "none")  # checks every setting
        name = f"{labels[scene]}/{backend}_{preset}_s{seed}" + (f"_{_slug(combo)}" if combo else "")
        key = (str(scene.resolve()), backend, preset, seed, tuple(overrides))
        if key in seen:
            raise LaserError(f"{path}: the run {name} is listed twice (scene {scene}, seed {seed}); each scene, seed "
                             "and setting once, please: duplicates would only count one training twice")
        seen[key] = name
        runs.append(RunSpec(name, str(scene), backend, preset, seed, overrides, iters, features,
                            bool(data.get("export", False))))
        if data.get("lift") and features != "none":
            runs.append(RunSpec(name.replace(f"/{backend}_", f"/{backend}-lift_", 1), str(scene), backend, preset,
                                seed, overrides + ["semantic.method=lift"], iters, features, False, base=name))
    return Plan(runs, {k: [str(a) for a in v] for k, v in generate.items()})


def _laser(args: list[str], threads: int, log: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    with open(log, "a", encoding="utf-8") as fh:
        done = subprocess.run([sys.executable, "-m", "laser_gs_cli.main", "--threads", str(threads), *args],
                              stdout=fh, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()][-1:]
        raise LaserError(f"`laser {args[0]}` failed ({done.returncode}): {tail[0] if tail else 'see ' + str(log)}")


def finished(run: Path) -> bool:
    return (run / "model.ckpt").is_file() and (run / "eval.json").is_file()


def run_task(spec: dict[str, Any], out: str, threads: int) -> dict[str, Any]:
    """One run, start to end, in this process's worker: train (or continue), evaluate, export; its result or its
    error. Runs in a Ray worker or in the driver."""
    s = RunSpec(**spec)
    run = Path(out) / s.name
    t0 = time.perf_counter()
    try:
        if not finished(run):
            run.mkdir(parents=True, exist_ok=True)
            log = run / "batch.log"
            train = ["train", "--backend", s.backend, "--scene", s.scene, "--out", str(run), "--preset", s.preset,
                     "--seed", str(s.seed), "--features", s.features] + [x for o in s.overrides for x in ("--set", o)]
            if s.iters:
                train += ["--iters", str(s.iters)]
            if (run / "config.json").is_file():
                train += ["--resume"]
            elif s.base is not None:  # a variant on its base run's stage 1
                train += ["--from", str(Path(out) / s.base)]
            _laser(train, threads, log)
            _laser(["eval", str(run), "--json", str(run / "eval.json"), "--no-timing"], threads, log)
            if s.export:
                _laser(["export", str(run), "--ply", str(run / "scene.ply")], threads, log)
        return {**run_result(run), "name": s.name, "scene": s.name.split("/")[0], "method": s.method,
                "backend": s.backend, "preset": s.preset, "seed": s.seed, "overrides": s.overrides,
                "status": "ok", "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the batch
        return {"name": s.name, "scene": s.name.split("/")[0], "method": s.method, "backend": s.backend,
                "seed": s.seed, "status": "failed", "error": str(exc).splitlines()[0][:300]}


def run_result(run: Path) -> dict[str, Any]:
    """The figures of a finished run (from its eval.json and train_log.json)."""
    ev = json.loads((run / "eval.json").read_text())
    log = json.loads((run / "train_log.json").read_text())
    seconds = log["stage_seconds"]
    out = {"psnr": ev["psnr"], "train_s": sum(seconds.values()), "lift_s": seconds.get("lift")}
    if "miou" in ev:
        out.update(miou=ev["miou"], accuracy=ev["accuracy"], per_class=ev["per_class"],
                   label_miou=ev["heads"].get("label", {}).get("miou"),
                   teacher_miou=(ev.get("teacher") or {}).get("miou"),
                   teacher_per_class=(ev.get("teacher") or {}).get("per_class"))
    return out


def _run_local(order: list[RunSpec], out: Path, threads: int, parallel: int, counts: dict[str, int],
               record: Callable[[dict[str, Any]], None],
               on_update: Callable[[dict[str, int]], None] | None) -> None:
    """Without Ray: ``parallel`` runs at a time in threads of this process (each run is its own ``laser``
    process, so threads only wait); a variant starts once its base run has ended (a base outside the plan, one
    already on disk, is not waited for, as with Ray)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    queue, ended, planned = list(order), set(), {s.name for s in order}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        pending: dict[Any, RunSpec] = {}
        while queue or pending:
            ready = [q for q in queue if q.base is None or q.base in ended or q.base not in planned]
            for spec in ready[:parallel - len(pending)]:
                queue.remove(spec)
                pending[pool.submit(run_task, asdict(spec), str(out), threads)] = spec
            counts["running"] = len(pending)
            if on_update is not None:
                on_update(dict(counts))
            assert pending, "a base run in the plan neither ran nor waits"  # bases are ordered first
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                spec = pending.pop(fut)
                ended.add(spec.name)
                counts["running"] = len(pending)
                record(fut.result())


def execute(plan: Plan, out: Path, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0,
            max_parallel: int | None = None, use_ray: bool | None = None,
            on_update: Callable[[dict[str, int]], None] | None = None) -> list[dict[str, Any]]:
    """Run the plan (finished runs are read back); returns one result per run, in plan order.

    With Ray (installed, or ``use_ray``) runs are tasks of ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs on a
    local Ray sized to this machine or on the cluster at ``address``; ``max_parallel`` caps runs in flight.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    missing = [(out / "scenes" / name, args) for name, args in plan.generate.items()
               if not (out / "scenes" / name / "scene.json").is_file()]
    if missing:  # each its own process: max_parallel of them at a time
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(len(missing), max_parallel or 1))) as pool:
            list(pool.map(lambda m: _laser(["make-scene", str(m[0]), "--force", *m[1]], 1,
                                           out / f"generate_{m[0].name}.log"), missing))
    if use_ray is None:
        try:
            import ray  # noqa: F401
            use_ray = True
        except ImportError:
            use_ray = False
    # running: runs in a worker now; queued: handed to Ray, waiting for a free slot
    counts = {"done": 0, "running": 0, "queued": 0, "failed": 0, "total": len(plan.runs)}
    results: dict[str, dict[str, Any]] = {}
    # base runs first: a lift variant needs its base's stage 1
    order = sorted(plan.runs, key=lambda s: s.base is not None)
    threads = max(1, int(cpus_per_run))

    def record(res: dict[str, Any]) -> None:  # the caller has updated running / queued
        results[res["name"]] = res
        counts["done" if res["status"] == "ok" else "failed"] += 1
        if on_update is not None:
            on_update(dict(counts))

    if not use_ray:
        _run_local(order, out, threads, max(1, max_parallel or 1), counts, record, on_update)
        return [results[s.name] for s in plan.runs]
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(run_task)
    pending: dict[Any, RunSpec] = {}
    resources = ray.cluster_resources()
    slots = max(1, int(resources.get("CPU", 1) // max(cpus_per_run, 1e-9)))
    if gpus_per_run:
        slots = min(slots, max(1, int(resources.get("GPU", 0) // gpus_per_run)))

    def in_flight() -> None:  # Ray runs at most `slots` tasks at once; the rest wait in its queue
        counts["running"] = min(len(pending), slots)
        counts["queued"] = len(pending) - counts["running"]

    queue = list(order)
    try:
        while queue or pending:
            while queue and (max_parallel is None or len(pending) < max_parallel):
                spec = queue[0]
                if spec.base is not None and spec.base not in results and any(
                        p.name == spec.base for p in pending.values()):
                    break  # wait for its base run
                queue.pop(0)
                pending[task.remote(asdict(spec), str(out), threads)] = spec
                in_flight()
                if on_update is not None:
                    on_update(dict(counts))
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                in_flight()
                record(ray.get(ref))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if not address:
            ray.shutdown()
    return [results[s.name] for s in plan.runs]
