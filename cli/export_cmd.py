"""``laser export``: labeled PLY files of a trained run."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import click

from laser_gs_cli.options import clip_weights_option, render_options, with_clip_weights


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ply", "ply_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output PLY. gsplat runs: 3DGS format (opens in standard splat viewers); tensorf runs: a "
                   "surface point cloud.")
@click.option("--prompts", default=None, help="Comma-separated classes to label with (default: the run's classes).")
@click.option("--color-by-label", is_flag=True, help="Also write FILE_by_label.ply coloured by class.")
@click.option("--force", is_flag=True, help="Overwrite existing PLY files there (never a file of another kind).")
@clip_weights_option
@render_options
def export_cmd(run_dir: Path, ply_path: Path, prompts: str | None, color_by_label: bool, force: bool,
               clip_weights: Path | None, device: str, max_memory_gb: float | None) -> None:
    """Export the trained scene as PLY with a per-vertex `label` (index into the prompts) and `label_score`.

    The prompts are stored in the PLY header as `comment class <i> <prompt>` lines. Runs trained without
    features (--features none) are exported without the label columns.

    \b
    Example:
      laser export runs/demo --ply demo.ply --color-by-label
    """
    from laser_gs.atomic import check_writable
    from laser_gs.errors import LaserError
    from laser_gs.export import export_points
    from laser_gs.export.ply import colored_path
    from laser_gs.memory import set_memory_limit
    from laser_gs.prompts import optional_prompt_embeddings, parse_prompts
    from laser_gs.run import open_run
    from laser_gs.run_lock import run_lock
    from laser_gs.safety import check_output_file, is_within

    set_memory_limit(max_memory_gb)
    targets = [ply_path] + ([colored_path(ply_path)] if color_by_label else [])
    for target in targets:  # new files, or with --force earlier PLYs: never a run's config or checkpoint
        check_output_file(target, force, b"ply", "--ply")
    check_writable(ply_path, "--ply")
    config, backend, scene = open_run(run_dir, device)
    config = with_clip_weights(config, clip_weights)
    names, text = optional_prompt_embeddings(backend, config, parse_prompts(prompts))
    if text is None and color_by_label:
        raise LaserError("--color-by-label needs semantics, but this run was trained with --features none")
    points = backend.points(scene.cameras, scene.train_views)
    # writing into the run: hold its lock, so that no training writes it meanwhile
    with run_lock(run_dir, "export") if is_within(ply_path.parent, run_dir) else nullcontext():
        written = export_points(points, ply_path, names, text, color_by_label=color_by_label,
                                offsets=backend.class_offsets(text))
    if text is None:
        click.echo("This run has no semantics (trained with --features none): the PLY has no label columns.")
    for path in written:
        click.echo(f"Wrote {path}")
