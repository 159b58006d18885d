"""``laser export``: labeled PLY files of a trained run."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import render_options
from laser_gs.memory import set_memory_limit
from laser_gs.prompts import parse_prompts, prompt_embeddings
from laser_gs.run import open_run


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ply", "ply_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output PLY. gsplat runs: 3DGS format (opens in standard splat viewers); tensorf runs: a "
                   "surface point cloud.")
@click.option("--prompts", default=None, help="Comma-separated classes to label with (default: the run's classes).")
@click.option("--color-by-label", is_flag=True, help="Also write FILE_by_label.ply coloured by class.")
@render_options
def export_cmd(run_dir: Path, ply_path: Path, prompts: str | None, color_by_label: bool, device: str,
               max_memory_gb: float | None) -> None:
    """Export the trained scene as PLY with a per-vertex `label` (index into the prompts) and `label_score`.

    The prompts are stored in the PLY header as `comment class <i> <prompt>` lines.

    \b
    Example:
      laser export runs/demo --ply demo.ply --color-by-label
    """
    set_memory_limit(max_memory_gb)
    config, backend, scene = open_run(run_dir, device)
    names = parse_prompts(prompts)
    text = None
    if backend.text is not None:
        names, text = prompt_embeddings(backend, config, names)
    elif names is not None:
        prompt_embeddings(backend, config, names)  # raises the "no semantic field" error
    views = scene.splits.get("train") or list(range(scene.num_views))
    written = backend.export(ply_path, names, text, color_by_label=color_by_label, cameras=scene.cameras,
                             views=views)
    for path in written:
        click.echo(f"Wrote {path}")
