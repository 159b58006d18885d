"""Train every backend on one scene with the same preset, then compare quality and speed.

    python scripts/bench_backends.py [--scene DIR] [--preset fast] [--out runs/bench] [--json F] [--quick]
                                     [--figures docs/figures]

Without --scene a synthetic scene is generated. Reports, per backend: training wall time per
stage and per iteration, PSNR, mIoU / accuracy (and the 2D teacher's), render ms and FPS for RGB
and RGB + segmentation, peak memory, and the gsplat/tensorf speed ratio. Full runs append a
table to docs/benchmarks.md; --quick is a CI-sized smoke run (tiny scene, few iterations).
Figures (PNG): held-out PSNR and mIoU against training wall time per backend, and RGB +
segmentation FPS against resolution (default folder: OUT/figures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from _bench_common import append_doc, ensure_scene, laser, machine, parse_common, write_json


def main(argv: list[str] | None = None) -> dict:
    args = parse_common(__doc__, "runs/bench_backends", argv, figures=True)
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
        settings = log["settings"]
        iters = {"reconstruct": settings[backend]["iters"], "semantics": settings["semantic"]["iters"]}
        results["backends"][backend] = {
            "train_wall_s": wall, "stage_seconds": log["stage_seconds"], "train_peak_mb": log.get("peak_memory_mb"),
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
        results["gsplat_speedup_segmentation"] = (bench["tensorf"]["ms_segmentation"]
                                                  / bench["gsplat"]["ms_segmentation"])
        results["gsplat_speedup_rgb"] = bench["tensorf"]["ms_rgb"] / bench["gsplat"]["ms_rgb"]
    rows = ["| backend | train s (stage 1 / 2) | s/iter (1 / 2) | PSNR dB | mIoU % | acc % | teacher mIoU % | "
            "RGB ms | RGB+seg ms | render peak MB | train peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for b, r in results["backends"].items():
        st, sp = r["stage_seconds"], r["s_per_iter"]
        rows.append(f"| {b} | {st.get('reconstruct', 0):.0f} / {st.get('semantics', 0):.0f} | "
                    f"{sp.get('reconstruct', 0):.3f} / {sp.get('semantics', 0):.3f} | {r['psnr']:.2f} | "
                    f"{r['miou'] or 0:.1f} | {r['accuracy'] or 0:.1f} | {r['teacher_miou'] or 0:.1f} | "
                    f"{r['render_ms_rgb']:.0f} | {r['render_ms_segmentation'] or 0:.0f} | "
                    f"{r.get('peak_mb') or 0:.0f} | "
                    + (f"{r['train_peak_mb']:.0f} |" if r.get("train_peak_mb") else "- |"))
    if "gsplat_speedup_segmentation" in results:
        rows.append(f"\ngsplat renders RGB + segmentation {results['gsplat_speedup_segmentation']:.1f}x and RGB "
                    f"{results['gsplat_speedup_rgb']:.1f}x faster than tensorf here.")
    figures = _figures(args, results)
    rows += [f"\n![{name}]({path})" for name, path in figures.items()]
    table = "\n".join(rows)
    print(table)
    append_doc(f"Backends on {scene.name} ({args.preset})",
               f"python scripts/bench_backends.py --scene {scene} --preset {args.preset}", table, args.quick)
    write_json(args.json, results)
    return results


def _curves(log: dict) -> dict[str, tuple[list[float], list[float]]]:
    """``{metric: (wall seconds since the start of training, values)}`` from a run's train_log.json."""
    offset, last_t, out = 0.0, 0.0, {}
    for h in log["history"]:
        if h["time"] < last_t:  # a new stage restarts its clock
            offset += last_t
        last_t = h["time"]
        for key in ("test_psnr", "miou"):
            if key in h:
                out.setdefault(key, ([], []))
                out[key][0].append(offset + h["time"])
                out[key][1].append(h[key])
    return out


def _figures(args, results: dict) -> dict[str, str]:
    """Training curves (PSNR, mIoU vs wall time) and render speed vs resolution, as PNGs in --figures."""
    from laser_gs.data.images import write_png
    from _plot import line_plot

    fig_dir = Path(args.figures) if args.figures else args.out / "figures"
    curves = {b: _curves(json.loads((args.out / b / "train_log.json").read_text())) for b in args.backends}
    written = {}
    for key, label in (("test_psnr", "held-out PSNR (dB)"), ("miou", "mIoU % (feature head, annotated views)")):
        series = {b: c[key] for b, c in curves.items() if key in c and c[key][0]}
        if series:
            path = fig_dir / f"curve_{key}.png"
            write_png(path, line_plot(series, f"{label} during training", "wall time (s)", label))
            written[f"{key} vs wall time"] = path
    sizes = [(80, 60), (160, 120)] if args.quick else [(80, 60), (160, 120), (320, 240), (640, 480)]
    speed: dict[str, tuple[list[float], list[float]]] = {}
    for w, h in sizes:
        out = args.out / f"bench_{w}x{h}.json"
        laser("bench", *[str(args.out / b) for b in args.backends], "--size", f"{w}x{h}", "--frames",
              "1" if args.quick else "3", "--json", str(out))
        for r in json.loads(out.read_text())["runs"]:
            if r.get("fps_segmentation"):
                xs, ys = speed.setdefault(r["backend"], ([], []))
                xs.append(w * h / 1000)
                ys.append(r["fps_segmentation"])
    results["fps_vs_resolution"] = {b: dict(zip(["kilopixels", "fps"], v)) for b, v in speed.items()}
    if speed:
        path = fig_dir / "fps_vs_resolution.png"
        write_png(path, line_plot(speed, "RGB + segmentation frames per second (log-log)", "kilopixels per frame",
                                  "FPS", log_x=True, log_y=True))
        written["FPS vs resolution"] = path
    doc_dir = Path(__file__).resolve().parents[1] / "docs"
    return {k: str(os.path.relpath(v, doc_dir)) for k, v in written.items()}


if __name__ == "__main__":
    main()
