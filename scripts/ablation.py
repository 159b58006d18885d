"""The paper's Table 4 on a synthetic scene, for each backend: which Laser modules help here.

    python scripts/ablation.py [--scene DIR] [--backends tensorf gsplat] [--out runs/ablation] [--quick]

Stage 1 (reconstruction) is trained once per backend; every variant starts stage 2 from its
``checkpoints/reconstruct_end.ckpt``, so rows differ only in the semantic modules:
base distillation, + adapter, + SCT, + transient query attention, + label volume, + text
augmentation (= the full method). Scores are the 3D-OVS mIoU / accuracy of the rendered feature
head and of the default (ensemble) head on the annotated views. Full runs append to
docs/benchmarks.md.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts._bench_common import append_doc, ensure_scene, laser, machine, parse_common, write_json  # noqa: E402

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


def run_variant(base: Path, out: Path, options: dict) -> dict:
    """Stage 2 of ``base`` again with other semantic switches; returns the eval scores."""
    from laser_gs.backends.registry import get_backend
    from laser_gs.data import load_scene
    from laser_gs.evaluation import evaluate_run
    from laser_gs.features.extract import load_features
    from laser_gs.run import RunConfig, read_run_config
    from laser_gs.training.checkpoint import STAGE1_FILE, load_checkpoint, step_path
    from laser_gs.training.loop import make_console

    config: RunConfig = read_run_config(base)
    shutil.rmtree(out, ignore_errors=True)
    stage1 = base / "checkpoints" / STAGE1_FILE
    step = int(load_checkpoint(stage1)["step"])
    step_path(out, step).parent.mkdir(parents=True)
    shutil.copy(stage1, step_path(out, step))
    cfg = config.to_dict()
    cfg["backend_options"] = {**(cfg.get("backend_options") or {}), "semantic": options}
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    scene = load_scene(config.scene, downscale=config.downscale, holdout=config.holdout, background=config.background)
    feats = load_features("precomputed", scene, features_dir=config.features_dir)
    backend = get_backend(config.backend)()
    backend.fit(scene, cfg, out, features=feats, console=make_console(quiet=True))
    ev = evaluate_run(backend, scene, None, backend.text, timing=False)
    return {"miou": ev["miou"], "accuracy": ev["accuracy"], "feature_miou": ev["heads"]["feature"]["miou"],
            "feature_accuracy": ev["heads"]["feature"]["accuracy"], "label_miou": ev["heads"]["label"]["miou"]}


def main(argv: list[str] | None = None) -> dict:
    args = parse_common(__doc__, "runs/ablation", argv)
    scene = ensure_scene(args)
    variants = VARIANTS[::5] if args.quick else VARIANTS
    results: dict = {"machine": machine(), "scene": str(scene), "backends": {}}
    for backend in args.backends:
        base = args.out / f"{backend}_base"
        if not (base / "model.ckpt").is_file():
            shutil.rmtree(base, ignore_errors=True)
            laser("train", "--backend", backend, "--scene", str(scene), "--out", str(base), "--preset", args.preset,
                  *(["--iters", "12"] if args.quick else []))
        rows = {}
        for i, (name, opts) in enumerate(variants):
            rows[name] = run_variant(base, args.out / f"{backend}_variant{i}", opts)
            print(backend, name, rows[name], flush=True)
        results["backends"][backend] = rows
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
