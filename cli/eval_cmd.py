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
@render_options
def eval_cmd(run_dir: Path, json_path: Path | None, head: str, no_timing: bool, device: str,
             max_memory_gb: float | None) -> None:
    """Evaluate a run: mIoU / accuracy on the annotated views (and of the 2D teacher), PSNR, render FPS.

    Pictures of render | 3D prediction | 2D teacher | ground truth per annotated view, metrics.json and a
    self-contained report.html (open it in a browser) go to RUN/eval/.

    \b
    Example:
      laser eval runs/demo --json runs/demo/scores.json
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
