"""``laser batch``: run a plan of many trainings, on Ray when installed (a laptop or a cluster)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.command("batch")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Batch folder: one run folder per run, results.json / .csv and report.html.")
@click.option("--address", default=None,
              help="Ray cluster to join ('auto' or ray://host:10001); default: a local Ray sized to this machine.")
@click.option("--cpus-per-run", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPUs (and torch threads) each run gets.")
@click.option("--gpus-per-run", type=click.FloatRange(min=0), default=0, show_default=True,
              help="GPUs each run gets (1 on a GPU cluster).")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None,
              help="Runs in flight at most (default: as many as the resources allow; without Ray: 1, one after "
                   "another, and N runs N at a time from this process).")
@click.option("--no-ray", is_flag=True, help="Run one after another in this process even if Ray is installed.")
def batch_cmd(plan_file: Path, out_dir: Path, address: str | None, cpus_per_run: int, gpus_per_run: float,
              max_parallel: int | None, no_ray: bool) -> None:
    """Run every training of PLAN_FILE (scenes x backends x presets x seeds x settings), then print one table.

    Finished runs are skipped and interrupted ones resumed, so running the same command again continues a
    batch. A failing run is reported without stopping the others. Ray is optional (pip install
    laser_gs[cluster]); without it the runs go one after another, or --max-parallel at a time on this machine.

    \b
    Example:
      laser batch examples/batch_small.toml --out runs/batch
      laser batch plan.toml --out /shared/batch --address auto --gpus-per-run 1
    """
    from rich.console import Console
    from rich.table import Table

    from laser_gs.progress import progress
    from laser_gs_cli.options import table_console

    from laser_gs.atomic import check_writable
    from laser_gs.batch import execute, load_plan
    from laser_gs.batch_results import SUMMARY_HEADER, summary_rows, write_outputs
    from laser_gs.errors import LaserError

    check_writable(out_dir, "--out")
    plan = load_plan(plan_file, out_dir)
    use_ray = False if no_ray else None
    if use_ray is None:
        try:
            import ray  # noqa: F401
        except ImportError:
            use_ray = False
            click.echo("Ray is not installed: the runs go " + (f"{max_parallel} at a time on this machine"
                       if max_parallel and max_parallel > 1 else "one after another (--max-parallel N runs N at a "
                       "time here; pip install 'laser_gs[cluster]' spreads them over a cluster)") + ".")
        if address and use_ray is False:
            raise LaserError("--address needs Ray: pip install 'laser_gs[cluster]'")
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with progress("batch", len(plan.runs), console, unit=" runs") as advance:
        shown = {"completed": 0}

        def update(c: dict[str, int]) -> None:
            completed = c["done"] + c["failed"]
            advance(completed - shown["completed"], f"done {c['done']}, running {c['running']}, queued "
                                                    f"{c.get('queued', 0)}, failed {c['failed']}")
            shown["completed"] = completed

        try:
            results = execute(plan, out_dir, address, cpus_per_run, gpus_per_run, max_parallel, use_ray, update)
        except KeyboardInterrupt:
            raise LaserError("batch interrupted; finished runs are kept, run the same command again to "
                             "continue") from None
    table = Table(title=f"laser batch: {len(results)} runs in {time.perf_counter() - t0:.0f} s")
    for col in SUMMARY_HEADER:
        table.add_column(col, justify="left" if col in ("method", "worst") else "right")
    for row in summary_rows(results):
        table.add_row(*row)
    table_console().print(table)
    failed = [r for r in results if r["status"] != "ok"]
    for r in failed:
        click.echo(f"failed: {r['name']}: {r['error']}")
    for path in write_outputs(results, out_dir):
        click.echo(f"Wrote {path}")
    if failed:
        sys.exit(1)
