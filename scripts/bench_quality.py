"""Segmentation quality as a distribution: several generated scenes, both backends, reruns with other seeds.

    python scripts/bench_quality.py [--out runs/quality] [--scenes 5] [--reruns 2] [--backends tensorf gsplat]
                                    [--preset fast] [--parallel 2] [--orbit] [--json F] [--quick] [--set K=V ...]

Scenes (``laser make-scene``, forward-facing unless ``--orbit``): the default tabletop (seed 0), the tabletop
with seed 1 (its teacher confuses the two red objects systematically), and random layouts with colour-alike
groups, small objects and a camouflaged grey pillar before a grey wall (see ``SCENES``). Every backend trains
on every scene with the same preset and settings (``--set`` applies to all runs), and every stage 1 is lifted
too (``--no-lift`` skips that); ``--reruns K`` trains the first scene K more times with other ``--seed`` values
(the run-to-run spread). The runs go through ``laser batch``'s machinery (Ray when installed), ``--parallel``
at a time with ``laser --threads`` set to their share of the cores, into ``OUT/<scene>/<method>_<preset>_s<seed>``;
finished runs are reused, so an interrupted benchmark continues.

Reports, per scene and backend: mIoU (feature head), per-class IoU, accuracy, the 2D teacher's mIoU, PSNR and
train time; then mean +- standard deviation over scenes, the worst scene, and the spread over seeds. Beside each
scene, its fusion bound (``laser_gs.synthetic.bound``: the teacher's features of all views averaged at each
pixel's true 3D point, calibrated as a run is; cached in ``OUT/<scene>/fusion_bound.json``) and every method's
distance to it, per class: below the bound a method lost evidence the teacher had; where the bound itself is
low, the teacher is wrong in most views. Full runs append the tables to docs/benchmarks.md; --quick is a
CI-sized smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from _bench_common import append_doc, machine, write_json
from laser_gs.batch import Plan, RunSpec, execute
from laser_gs.batch_results import mean_sd
from laser_gs.synthetic.bound import fusion_bound

#: (name, make-scene arguments) of the forward-facing benchmark scenes
SCENES = [
    ("tabletop_s0", ["--seed", "0"]),
    ("tabletop_s1", ["--seed", "1"]),
    ("random_s2", ["--layout", "random", "--seed", "2", "--objects", "4", "--similar", "2"]),
    ("random_s3", ["--layout", "random", "--seed", "3", "--objects", "5", "--similar", "3", "--small", "1"]),
    ("random_s4", ["--layout", "random", "--seed", "4", "--objects", "4", "--similar", "2", "--camouflage"]),
    ("random_s5", ["--layout", "random", "--seed", "5", "--objects", "6", "--similar", "2", "--small", "2"]),
    ("random_s8", ["--layout", "random", "--seed", "8", "--objects", "4", "--similar", "2", "--camouflage"]),
    ("random_s9", ["--layout", "random", "--seed", "9", "--objects", "5", "--similar", "2", "--camouflage"]),
]
#: the orbit (360-degree-style) scenes of --orbit
ORBIT_SCENES = [
    ("orbit_s2", ["--layout", "random", "--cameras", "orbit", "--seed", "2", "--objects", "4", "--similar", "2"]),
    ("orbit_s3", ["--layout", "random", "--cameras", "orbit", "--seed", "3", "--objects", "5", "--similar", "3",
                  "--small", "1"]),
    ("orbit_s4", ["--layout", "random", "--cameras", "orbit", "--seed", "4", "--objects", "4", "--camouflage"]),
]
QUICK = ["--size", "64x48", "--views", "6", "--annotated", "2", "--dim", "32"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/quality"))
    ap.add_argument("--scenes", type=int, default=5, help="how many of the forward-facing scenes")
    ap.add_argument("--orbit", action="store_true", help="also the orbit scenes")
    ap.add_argument("--reruns", type=int, default=2, help="extra seeds on the first scene")
    ap.add_argument("--backends", nargs="+", default=["tensorf", "gsplat"])
    ap.add_argument("--no-lift", dest="lift", action="store_false",
                    help="skip the training-free lift (by default every run's stage 1 is also lifted)")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="a setting for every run")
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (each gets cores / parallel threads)")
    ap.add_argument("--no-ray", action="store_true", help="run --parallel at a time from this process, not on Ray")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL:K=V[,K=V]",
                    help="also rerun stage 2 of every run of the backend LABEL starts with, from its stage 1, with "
                         "these settings (e.g. gsplat-nosmooth:gsplat.smooth_iters=0); a method column LABEL")
    ap.add_argument("--no-bound", dest="bound", action="store_false",
                    help="skip the fusion bounds (e.g. on a GPU machine; --report computes them later)")
    ap.add_argument("--report", type=Path, default=None, metavar="JSON",
                    help="no runs: the tables of a saved quality.json (scenes regenerated into OUT/scenes for "
                         "their fusion bounds)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def variants(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``LABEL:K=V[,K=V]`` -> (label, settings); the label starts with its backend's name."""
    out = []
    for spec in specs:
        label, _, sets = spec.partition(":")
        if not label or not sets or not all("=" in kv for kv in sets.split(",")):
            raise SystemExit(f"--variant {spec!r}: expected LABEL:KEY=VALUE[,KEY=VALUE], e.g. "
                             "gsplat-nosmooth:gsplat.smooth_iters=0")
        out.append((label, sets.split(",")))
    return out


def plan(args: argparse.Namespace, catalogue: list[tuple[str, list[str]]]) -> Plan:
    """The benchmark as a batch plan: every scene x backend (seed 0), the lift of each, and reruns of the first
    scene with other seeds."""
    runs = []
    first = catalogue[0][0]
    for (name, _), seed in [(c, 0) for c in catalogue] + [(catalogue[0], s) for s in range(1, args.reruns + 1)]:
        scene = str(args.out / "scenes" / name)
        for backend in args.backends:
            base = f"{name}/{backend}_{args.preset}_s{seed}"
            runs.append(RunSpec(base, scene, backend, args.preset, seed, list(args.overrides),
                                12 if args.quick else None))
            if args.lift and (seed == 0 or name != first):
                runs.append(RunSpec(base.replace(f"/{backend}_", f"/{backend}-lift_", 1), scene, backend, args.preset,
                                    seed, list(args.overrides) + ["semantic.method=lift"],
                                    12 if args.quick else None, base=base))
            for label, sets in variants(args.variant):
                if label.split("-")[0] == backend:
                    runs.append(RunSpec(base.replace(f"/{backend}_", f"/{label}_", 1), scene, backend, args.preset,
                                        seed, list(args.overrides) + sets, 12 if args.quick else None, base=base,
                                        label=label))
    return Plan(runs, {name: make + (QUICK if args.quick else []) for name, make in catalogue})


def scene_bounds(out: Path, scenes: list[str]) -> dict[str, dict]:
    """The fusion bound of every generated scene (cached beside its runs)."""
    bounds = {}
    for name in scenes:
        cache = out / name / "fusion_bound.json"
        if cache.is_file():
            bounds[name] = json.loads(cache.read_text())
            continue
        bounds[name] = fusion_bound(out / "scenes" / name)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(bounds[name], indent=1))
    return bounds


def tables(results: list[dict], backends: list[str], first: str, bounds: dict[str, dict] | None = None) -> str:
    """Markdown: per scene and backend (with the scene's fusion bound and each method's distance to it), the
    summary over scenes, and the seed spread."""
    bounds = bounds or {}
    main = [r for r in results if r["seed"] == 0]
    scenes = sorted({r["scene"] for r in main}, key=[r["scene"] for r in main].index)
    lines = ["| scene | teacher mIoU | fusion bound (per class) | "
             + " | ".join(f"{b} mIoU (per class; - bound)" for b in backends) + " |",
             "|---|---|---|" + "---|" * len(backends)]
    for s in scenes:
        rows = {r["method"]: r for r in main if r["scene"] == s}
        any_r = next(iter(rows.values()))
        bound = bounds.get(s)
        cells = []
        for b in backends:
            r = rows.get(b)
            if r is None:
                cells.append("-")
                continue
            per_class = ", ".join(f"{k} {v:.0f}" for k, v in r["per_class"].items())
            gap = f"; {r['miou'] - bound['miou']:+.1f}" if bound else ""
            cells.append(f"**{r['miou']:.1f}** ({per_class}{gap})")
        bound_cell = "-" if bound is None else (f"{bound['miou']:.1f} ("
                                                 + ", ".join(f"{k} {v:.0f}" for k, v in bound["per_class"].items())
                                                 + ")")
        lines.append(f"| {s} | {any_r['teacher_miou']:.1f} | {bound_cell} | " + " | ".join(cells) + " |")
    lines += ["", "| method | mIoU mean +- sd over scenes | worst scene | mean gain over teacher | mIoU - fusion bound "
              "| PSNR dB | train min | label head mIoU |", "|---|---|---|---|---|---|---|---|"]
    if bounds:
        b_main = [bounds[s]["miou"] for s in scenes if s in bounds]
        lines.append(f"| fusion bound | {mean_sd(b_main)} | {min(b_main):.1f} | - | 0 | - | - | - |")
    for b in backends:
        rs = [r for r in main if r["method"] == b]
        if not rs:
            continue
        worst = min(rs, key=lambda r: r["miou"])
        gain = [r["miou"] - r["teacher_miou"] for r in rs]
        to_bound = [r["miou"] - bounds[r["scene"]]["miou"] for r in rs if r["scene"] in bounds]
        lines.append(f"| {b} | {mean_sd([r['miou'] for r in rs])} | {worst['miou']:.1f} ({worst['scene']}) | "
                     f"{mean_sd(gain)} | {mean_sd(to_bound) if to_bound else '-'} | "
                     f"{mean_sd([r['psnr'] for r in rs])} | "
                     f"{mean_sd([r['train_s'] / 60 for r in rs])} | {mean_sd([r['label_miou'] for r in rs])} |")
    seeds = [r for r in results if r["scene"] == first]
    if len({r["seed"] for r in seeds}) > 1:
        lines += ["", f"Spread over seeds on {first}:", "",
                  "| backend | seeds | mIoU per seed | mean +- sd | max - min |", "|---|---|---|---|---|"]
        for b in backends:
            rs = sorted((r for r in seeds if r["method"] == b), key=lambda r: r["seed"])
            if rs:
                m = [r["miou"] for r in rs]
                lines.append(f"| {b} | {', '.join(str(r['seed']) for r in rs)} | {', '.join(f'{x:.1f}' for x in m)} | "
                             f"{mean_sd(m)} | {max(m) - min(m):.1f} |")
    return "\n".join(lines)


def report(args: argparse.Namespace) -> dict:
    """The tables of a saved benchmark (``--report``), with the fusion bounds of its scenes."""
    saved = json.loads(args.report.read_text())
    results = [r for r in saved["runs"] if r.get("status") == "ok"]
    known = dict(SCENES + ORBIT_SCENES)
    scenes = list(dict.fromkeys(r["scene"] for r in results))
    execute(Plan([], {s: known[s] for s in scenes if s in known}), args.out, use_ray=False)  # the scenes only
    bounds = scene_bounds(args.out, [s for s in scenes if s in known]) if args.bound else {}
    methods = list(dict.fromkeys(r["method"] for r in results))
    table = tables(results, methods, scenes[0], bounds)
    print(table)
    return {**saved, "fusion_bounds": bounds}


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.report is not None:
        return report(args)
    catalogue = SCENES[:max(1, args.scenes)] + (ORBIT_SCENES if args.orbit else [])
    if args.quick:
        catalogue = catalogue[:2]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, args.parallel))
    results = execute(plan(args, catalogue), args.out, cpus_per_run=threads, max_parallel=args.parallel,
                      use_ray=False if args.parallel == 1 or args.no_ray else None)
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        raise SystemExit("runs failed: " + "; ".join(f"{r['name']}: {r['error']}" for r in failed))
    names = [n for b in args.backends for n in ([b, f"{b}-lift"] if args.lift else [b])
             + [label for label, _ in variants(args.variant) if label.split("-")[0] == b]]
    bounds = scene_bounds(args.out, [name for name, _ in catalogue]) if args.bound else {}
    table = tables(results, names, catalogue[0][0], bounds)
    print(table)
    append_doc(f"Quality over {len(catalogue)} generated scenes ({args.preset}"
               + (", " + " ".join(args.overrides) if args.overrides else "") + ")",
               "python scripts/bench_quality.py " + " ".join(sys.argv[1:] if argv is None else argv), table, args.quick)
    out = {"machine": machine(), "preset": args.preset, "overrides": args.overrides, "runs": results,
           "fusion_bounds": bounds}
    write_json(args.json or args.out / "quality.json", out)
    return out


if __name__ == "__main__":
    main()
