"""Train every backend on one scene with the same preset, then compare quality and speed.

    python scripts/bench_backends.py [--scene DIR] [--preset fast] [--out runs/bench] [--json F] [--quick]

Without --scene a synthetic scene is generated. Reports, per backend: training wall time per
stage and per iteration, PSNR, mIoU / accuracy (and the 2D teacher's), render ms and FPS for RGB
and RGB + segmentation, peak memory, and the gsplat/tensorf speed ratio. Full runs append a
table to docs/benchmarks.md; --quick is a CI-sized smoke run (tiny scene, few iterations).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts._bench_common import append_doc, ensure_scene, laser, machine, parse_common, write_json  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    args = parse_common(__doc__, "runs/bench_backends", argv)
    scene = ensure_scene(args)
    results = {"machine": machine(), "scene": str(scene), "preset": args.preset, "backends": {}}
    for backend in args.backends:
        run = args.out / backend
        train = ["train", "--backend", backend, "--scene", str(scene), "--out", str(run), "--preset", args.preset]
        if args.quick:
            train += ["--iters", "12"]
        if (run / "model.ckpt").is_file():
            wall = float("nan")
        else:
            wall = laser(*train, "--resume") if (run / "config.json").is_file() else laser(*train)
        laser("eval", str(run), "--json", str(run / "eval.json"))
        ev = json.loads((run / "eval.json").read_text())
        log = json.loads((run / "train_log.json").read_text())
        cfg = log["resolved_config"]
        iters = {"reconstruct": cfg["iters"], "semantics": cfg["semantic"]["iters"]}
        results["backends"][backend] = {
            "train_wall_s": wall, "stage_seconds": log["stage_seconds"],
            "s_per_iter": {k: v / max(1, iters.get(k, 1)) for k, v in log["stage_seconds"].items()},
            "psnr": ev["psnr"], "miou": ev.get("miou"), "accuracy": ev.get("accuracy"), "head": ev.get("head"),
            "heads": {k: v["miou"] for k, v in ev.get("heads", {}).items()},
            "teacher_miou": (ev.get("teacher") or {}).get("miou"),
            "render_ms_rgb": ev["render_ms_rgb"], "render_ms_segmentation": ev.get("render_ms_segmentation"),
            "resolution": ev["resolution"]}
    laser("bench", *[str(args.out / b) for b in args.backends], "--json", str(args.out / "bench.json"),
          *(["--frames", "1"] if args.quick else []))
    bench = {r["backend"]: r for r in json.loads((args.out / "bench.json").read_text())["runs"]}
    for b, r in bench.items():
        results["backends"][b].update(peak_mb=r.get("peak_mb_segmentation"), fps_rgb=r["fps_rgb"],
                                      fps_segmentation=r.get("fps_segmentation"))
    if "tensorf" in bench and "gsplat" in bench and bench["gsplat"].get("ms_segmentation"):
        results["gsplat_speedup_segmentation"] = bench["tensorf"]["ms_segmentation"] / bench["gsplat"]["ms_segmentation"]
        results["gsplat_speedup_rgb"] = bench["tensorf"]["ms_rgb"] / bench["gsplat"]["ms_rgb"]
    rows = ["| backend | train s (stage 1 / 2) | s/iter (1 / 2) | PSNR dB | mIoU % | acc % | teacher mIoU % | "
            "RGB ms | RGB+seg ms | peak MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for b, r in results["backends"].items():
        st, sp = r["stage_seconds"], r["s_per_iter"]
        rows.append(f"| {b} | {st.get('reconstruct', 0):.0f} / {st.get('semantics', 0):.0f} | "
                    f"{sp.get('reconstruct', 0):.3f} / {sp.get('semantics', 0):.3f} | {r['psnr']:.2f} | "
                    f"{r['miou'] or 0:.1f} | {r['accuracy'] or 0:.1f} | {r['teacher_miou'] or 0:.1f} | "
                    f"{r['render_ms_rgb']:.0f} | {r['render_ms_segmentation'] or 0:.0f} | {r.get('peak_mb') or 0:.0f} |")
    if "gsplat_speedup_segmentation" in results:
        rows.append(f"\ngsplat renders RGB + segmentation {results['gsplat_speedup_segmentation']:.1f}x and RGB "
                    f"{results['gsplat_speedup_rgb']:.1f}x faster than tensorf here.")
    table = "\n".join(rows)
    print(table)
    append_doc(f"Backends on {scene.name} ({args.preset})",
               f"python scripts/bench_backends.py --scene {scene} --preset {args.preset}", table, args.quick)
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
