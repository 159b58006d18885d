"""The paper's Table 4 on a synthetic scene, for each backend: which Laser modules help here.

    python scripts/ablation.py [--scene DIR] [--backends tensorf gsplat] [--out runs/ablation] [--quick]

Stage 1 (reconstruction) is trained once per backend; every variant starts stage 2 from its
stage 1 (``train_run(..., base=...)``, as ``laser train --from``), so rows differ only in the semantic modules:
base distillation, + adapter, + SCT, + transient query attention, + label volume, + text
augmentation (= the full method). Scores are the 3D-OVS mIoU / accuracy of the rendered feature
head and of the label head on the annotated views. ``--sweeps`` adds the paper's Tables 5, 6 and 8
on a reduced grid (alpha, beta, gamma each at 0, its default and 1, the others at their defaults;
``--sweeps-only`` skips the module rows). Full runs append to docs/benchmarks.md. Variants whose
run folder already holds a finished model with the same options are only scored again, so an
interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _bench_common import append_doc, ensure_scene, laser, machine, parse_common, write_json

VARIANTS = [
    ("base distillation", dict(use_adapter=False, use_sct=False, use_attention=False, use_label=False,
                               use_text_aug=False)),
    ("+ adapter", dict(use_adapter=True, use_sct=False, use_attention=False, use_label=False, use_text_aug=False)),
    ("+ SCT", dict(use_adapter=True, use_sct=True, use_attention=False, use_label=False, use_text_aug=False)),
    ("+ transient attention", dict(use_adapter=True, use_sct=True, use_attention=True, use_label=False,
                                   use_text_aug=False)),
    ("+ label volume", dict(use_adapter=True, use_sct=True, use_attention=True, use_label=True, use_text_aug=False)),
    ("+ text augmentation (full)", dict(use_adapter=True, use_sct=True, use_attention=True, use_label=True,
                                        use_text_aug=True)),
]


def _variant_overrides(options: dict) -> list[str]:
    return [f"semantic.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items()]


def run_variant(base: Path, out: Path, options: dict) -> dict:
    """Stage 2 of ``base`` again with other semantic settings; returns the eval scores."""
    from laser_gs.backends.registry import get_backend
    from laser_gs.evaluation import evaluate_run
    from laser_gs.run import read_run_config
    from laser_gs.train import load_run_inputs, train_run
    from laser_gs.training.loop import make_console

    config = read_run_config(base)
    config.overrides = [o for o in config.overrides if not o.startswith("semantic.")] + _variant_overrides(options)
    scene, features = load_run_inputs(config)
    if _finished_with(out, config.overrides):  # a rerun (e.g. after an interruption) scores finished variants again
        backend = get_backend(config.backend).load(out / "model.ckpt")
        return _scores(evaluate_run(backend, scene, None, backend.text, timing=False))
    shutil.rmtree(out, ignore_errors=True)  # this script's own unfinished variant
    # the variant starts from the base run's stage 1 (laser train --from)
    backend = train_run(config, out, console=make_console(quiet=True), inputs=(scene, features), base=base)
    return _scores(evaluate_run(backend, scene, None, backend.text, timing=False))


def _finished_with(out: Path, overrides: list[str]) -> bool:
    """Whether ``out`` holds a finished stage 2 run with exactly these settings overrides."""
    try:
        cfg = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (out / "model.ckpt").is_file() and cfg.get("overrides") == overrides


def _scores(ev: dict) -> dict:
    return {"miou": ev["miou"], "accuracy": ev["accuracy"], "feature_miou": ev["heads"]["feature"]["miou"],
            "feature_accuracy": ev["heads"]["feature"]["accuracy"], "label_miou": ev["heads"]["label"]["miou"]}


# The paper's Tables 5, 6 and 8 on a reduced grid: each ratio at its extremes (the default run is the middle).
SWEEPS = {"alpha": (0.0, 1.0), "beta": (0.0, 1.0), "gamma": (0.0, 1.0)}
DEFAULTS = {"alpha": 0.2, "beta": 0.3, "gamma": 0.5}
FULL = dict(use_adapter=True, use_sct=True, use_attention=True, use_label=True, use_text_aug=False)


def sweep_rows(backend: str, base: Path, out: Path, quick: bool) -> dict[str, dict[float, dict]]:
    """mIoU for each ratio value, the others at their defaults (all modules but text augmentation)."""
    rows: dict[str, dict[float, dict]] = {}
    default = run_variant(base, out / f"{backend}_sweep_default", FULL)
    for name, values in SWEEPS.items():
        rows[name] = {DEFAULTS[name]: default}
        for value in values[:1] if quick else values:
            rows[name][value] = run_variant(base, out / f"{backend}_sweep_{name}_{value}", {**FULL, name: value})
            print(backend, name, value, rows[name][value], flush=True)
    return rows


def sweep_table(results: dict, backends: list[str]) -> str:
    lines = ["| ratio | value | " + " | ".join(f"{b} mIoU (feature) | {b} mIoU (label)" for b in backends) + " |",
             "|---|---|" + "---|---|" * len(backends)]
    for name in SWEEPS:
        values = sorted(results["sweeps"][backends[0]][name])
        for v in values:
            cells = []
            for b in backends:
                r = results["sweeps"][b][name][v]
                cells += [f"{r['feature_miou']:.1f}", f"{r['label_miou']:.1f}"]
            mark = " (default)" if v == DEFAULTS[name] else ""
            lines.append(f"| {name} | {v}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_common(__doc__, "runs/ablation", argv, sweeps=True)
    scene = ensure_scene(args, text_aug=True)
    variants = VARIANTS[::5] if args.quick else VARIANTS
    results: dict = {"machine": machine(), "scene": str(scene), "backends": {}}
    for backend in args.backends:
        base = args.out / f"{backend}_base"
        if not (base / "model.ckpt").is_file():
            shutil.rmtree(base, ignore_errors=True)
            laser("train", "--backend", backend, "--scene", str(scene), "--out", str(base), "--preset", args.preset,
                  *(["--iters", "12"] if args.quick else []))
        if args.sweeps:
            results.setdefault("sweeps", {})[backend] = sweep_rows(backend, base, args.out, args.quick)
            if args.sweeps_only:
                continue
        rows = {}
        for i, (name, opts) in enumerate(variants):
            rows[name] = run_variant(base, args.out / f"{backend}_variant{i}", opts)
            print(backend, name, rows[name], flush=True)
        results["backends"][backend] = rows
    if args.sweeps:
        table = sweep_table(results, args.backends)
        print(table)
        append_doc("Ratio sweeps (paper Tables 5, 6, 8: alpha, beta, gamma) on a synthetic scene",
                   f"python scripts/ablation.py --scene {scene} --preset {args.preset} --sweeps-only", table,
                   args.quick)
        if args.sweeps_only:
            write_json(args.json, results)
            return results
    header = "| variant | " + " | ".join(f"{b} mIoU (feature head) | {b} acc" for b in args.backends) + " |"
    lines = [header, "|---|" + "---|---|" * len(args.backends)]
    for name, _ in variants:
        cells = []
        for b in args.backends:
            r = results["backends"][b][name]
            cells += [f"{r['feature_miou']:.1f}", f"{r['feature_accuracy']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    append_doc("Ablation (paper Table 4) on a synthetic scene",
               f"python scripts/ablation.py --scene {scene} --preset {args.preset}", table, args.quick)
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
