"""``laser eval``: score a trained run on its scene (3D-OVS protocol) and write pictures."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from laser_gs_cli.options import render_options
from laser_gs.choices import DEFAULT_HEAD, HEADS


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the scores to this JSON file (RUN/eval/metrics.json is always written).")
@click.option("--head", type=click.Choice(HEADS), default=DEFAULT_HEAD, show_default=True,
              help="Prediction reported as miou/accuracy: rendered feature, label volume, or both.")
@click.option("--no-timing", is_flag=True, help="Skip the render-speed measurement.")
@click.option("--protocol", type=click.Choice(["auto", "3dovs", "lerf-ovs"]), default="auto", show_default=True,
              help="3dovs: per-pixel classes of segmentations/ (mIoU, accuracy); lerf-ovs: per-query relevancy "
                   "masks and localisation of LERF-OVS JSON labels; auto: 3dovs if the scene has "
                   "segmentations/, else lerf-ovs if it has label/ (see docs/data_formats.md).")
@click.option("--labels", "labels_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of LERF-OVS label JSONs (default: SCENE/label/); implies --protocol lerf-ovs.")
@click.option("--threshold", type=float, default=0.7, show_default=True,
              help="lerf-ovs: mask threshold on the relevancy rescaled to [0, 1] per image.")
@render_options
def eval_cmd(run_dir: Path, json_path: Path | None, head: str, no_timing: bool, protocol: str,
             labels_dir: Path | None, threshold: float, device: str, max_memory_gb: float | None) -> None:
    """Evaluate a run: mIoU / accuracy on the annotated views (and of the 2D teacher), PSNR, render FPS.

    Pictures of render | 3D prediction | 2D teacher | ground truth per annotated view, metrics.json and a
    self-contained report.html (open it in a browser) go to RUN/eval/.

    \b
    Examples:
      laser eval runs/demo --json runs/demo/scores.json
      laser eval runs/teatime --protocol lerf-ovs --labels data/lerf_ovs/label/teatime
    """
    from laser_gs.atomic import atomic_write_text, check_writable
    from laser_gs.evaluation import evaluate_run
    from laser_gs.features.extract import load_features
    from laser_gs.memory import set_memory_limit
    from laser_gs.report import eval_report
    from laser_gs.run import open_run

    set_memory_limit(max_memory_gb)
    check_writable(run_dir / "eval", "RUN/eval")
    if json_path is not None:
        check_writable(json_path, "--json")
    config, backend, scene = open_run(run_dir, device)
    features = None
    if config.features == "precomputed":
        features = load_features("precomputed", scene, features_dir=config.features_dir)
    text = backend.text if backend.text is not None else (features.text if features is not None else None)
    out_dir = run_dir / "eval"
    if labels_dir is not None:
        protocol = "lerf-ovs"
    if protocol == "auto":
        from laser_gs.data.lerf_ovs import find_label_dir
        protocol = "lerf-ovs" if not scene.gt_masks and find_label_dir(scene.root) is not None else "3dovs"
    if protocol == "lerf-ovs":
        _eval_lerf(run_dir, config, backend, scene, features, text, labels_dir, threshold, json_path)
        return
    result = evaluate_run(backend, scene, features, text, out_dir=out_dir, head=head, timing=not no_timing)
    result.update(run=str(run_dir), backend=config.backend, preset=config.preset)
    payload = json.dumps(result, indent=2)
    atomic_write_text(out_dir / "metrics.json", payload)
    if json_path is not None:
        atomic_write_text(json_path, payload)
    pictures = [out_dir / f"{scene.image_names[v]}.png" for v in scene.annotated_views
                if (out_dir / f"{scene.image_names[v]}.png").is_file()]
    report = eval_report(result, pictures).write(out_dir / "report.html")
    _print_table(result)
    click.echo(f"Report: {report}")


def _eval_lerf(run_dir: Path, config, backend, scene, features, text, labels_dir: Path | None, threshold: float,
               json_path: Path | None) -> None:
    """``laser eval --protocol lerf-ovs``: relevancy-mask mIoU and localisation accuracy (run and teacher)."""
    from laser_gs.atomic import atomic_write_text
    from laser_gs.data.lerf_ovs import find_label_dir, read_lerf_labels
    from laser_gs.errors import LaserError
    from laser_gs.evaluation_lerf import evaluate_lerf_ovs

    if labels_dir is None:
        labels_dir = find_label_dir(scene.root)
        if labels_dir is None:
            raise LaserError(f"{scene.root}: no LERF-OVS labels (label/*.json); pass --labels DIR")
    if text is None:
        raise LaserError(f"{run_dir}: the run has no class text to query (it was trained without semantics)")
    frames = read_lerf_labels(labels_dir, scene.image_names, (scene.width, scene.height))
    result = evaluate_lerf_ovs(backend, scene, frames, text, features, threshold)
    result.update(run=str(run_dir), backend=config.backend, preset=config.preset, labels=str(labels_dir))
    payload = json.dumps(result, indent=2)
    atomic_write_text(run_dir / "eval" / "metrics_lerf_ovs.json", payload)
    if json_path is not None:
        atomic_write_text(json_path, payload)
    table = Table(title=f"{run_dir} ({config.backend}), LERF-OVS protocol: {result['queries']} queries "
                        f"on {len(frames)} frames")
    for col in ("metric", "3D (this run)", "2D teacher"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    teacher = result.get("teacher") or {}
    table.add_row("mIoU %", f"{result['miou']:.1f}", f"{teacher['miou']:.1f}" if teacher else "-")
    table.add_row("localisation accuracy %", f"{result['localization']:.1f}",
                  f"{teacher['localization']:.1f}" if teacher else "-")
    for cat, iou in result["per_class"].items():
        table.add_row(f"  IoU % {cat}", f"{iou:.1f}", f"{teacher['per_class'][cat]:.1f}" if teacher else "")
    Console().print(table)
    click.echo(f"Wrote {run_dir / 'eval' / 'metrics_lerf_ovs.json'}")


def _print_table(r: dict) -> None:
    console = Console()
    table = Table(title=f"{r['run']} ({r['backend']})")
    table.add_column("metric")
    table.add_column("3D (this run)", justify="right")
    table.add_column("2D teacher", justify="right")
    teacher = r.get("teacher") or {}
    if "miou" in r:
        table.add_row(f"mIoU % ({r['head']} head)", f"{r['miou']:.1f}", f"{teacher['miou']:.1f}" if teacher else "-")
        table.add_row("accuracy %", f"{r['accuracy']:.1f}", f"{teacher['accuracy']:.1f}" if teacher else "-")
        for h, s in r["heads"].items():
            if h != r["head"]:
                table.add_row(f"  mIoU % ({h} head)", f"{s['miou']:.1f}", "")
    table.add_row(f"PSNR dB ({r['psnr_views']} views)", f"{r['psnr']:.2f}", "")
    if "render_fps" in r:
        w, h = r["resolution"]
        table.add_row(f"render RGB ms/frame ({w}x{h})", f"{r['render_ms_rgb']:.0f}", "")
        if "render_ms_segmentation" in r:
            table.add_row("render RGB+segmentation ms/frame", f"{r['render_ms_segmentation']:.0f}", "")
    console.print(table)
    if r.get("per_class"):
        per = Table(title="per-class IoU %")
        for name in r["per_class"]:
            per.add_column(name, justify="right")
        per.add_row(*[f"{v:.1f}" for v in r["per_class"].values()])
        console.print(per)
