"""``laser bench``: compare runs (any backends) on render speed, memory and accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from laser_gs_cli.options import parse_size, render_options, table_console


@click.command("bench")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", default=None, help="Render resolution WxH (default: the scene's).")
@click.option("--frames", type=click.IntRange(min=1), default=3, show_default=True,
              help="Frames timed per measurement (after one warm-up).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results as JSON.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Self-contained HTML report (default: report.html beside --json, else FIRST_RUN/bench/report.html).")
@render_options
def bench_cmd(runs: tuple[Path, ...], size: str | None, frames: int, json_path: Path | None,
              report_path: Path | None, device: str, max_memory_gb: float | None) -> None:
    """Render the same cameras with each run and report ms/frame, FPS, peak memory and mIoU.

    \b
    Example:
      laser bench runs/tensorf runs/gsplat --json bench.json
    """
    from laser_gs.atomic import atomic_write_text, check_writable
    from laser_gs.bench import add_speedups, bench_run
    from laser_gs.memory import set_memory_limit
    from laser_gs.report import bench_report

    set_memory_limit(max_memory_gb)
    wh = parse_size(size) if size else None
    for path, what in ((json_path, "--json"), (report_path, "--report")):
        if path is not None:
            check_writable(path, what)
    results = [bench_run(run, wh, frames, device) for run in runs]
    add_speedups(results)
    table = Table(title="laser bench")
    for col in ("run", "backend", "device", "WxH", "RGB ms", "RGB FPS", "RGB+seg ms", "RGB+seg FPS", "peak MB",
                "mIoU %", "acc %", "speed-up"):
        table.add_column(col, justify="left" if col in ("run", "backend", "device") else "right")

    def _times(v: float) -> str:  # 0.032x, 1x, 9.5x, 130x
        return f"{v:.2g}x" if v < 10 else f"{v:.0f}x"

    def fmt(r: dict, key: str, spec: str = ".1f") -> str:
        return format(r[key], spec) if key in r else "-"

    for r in results:
        table.add_row(r["run"], r["backend"], r["device"], "x".join(map(str, r["resolution"])), fmt(r, "ms_rgb"),
                      fmt(r, "fps_rgb", ".2f"), fmt(r, "ms_segmentation"), fmt(r, "fps_segmentation", ".2f"),
                      fmt(r, "peak_mb_segmentation", ".0f") if "peak_mb_segmentation" in r
                      else fmt(r, "peak_mb_rgb", ".0f"), fmt(r, "miou"), fmt(r, "accuracy"),
                      _times(r["speedup_segmentation_vs_first"]) if "speedup_segmentation_vs_first" in r else "-")
    table_console().print(table)
    if json_path is not None:
        atomic_write_text(json_path, json.dumps({"runs": results}, indent=2))
    if report_path is None:
        report_path = json_path.with_name("report.html") if json_path is not None else runs[0] / "bench" / "report.html"
    click.echo(f"Report: {bench_report(results).write(report_path)}")
