"""``laser query``: select the 3D points / Gaussians that match one prompt."""

from __future__ import annotations

from pathlib import Path

import click

from laser_gs.choices import CANONICAL_NEGATIVES, DEFAULT_HEAD, HEADS
from laser_gs_cli.options import clip_weights_option, render_options, with_clip_weights



@click.command("query")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("text")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Relevancy a point needs to be selected (0.5: closer to the prompt than to every negative).")
@click.option("--negatives", type=click.Choice(["classes", "canonical"]), default="classes", show_default=True,
              help="Compare against the run's other classes (no CLIP needed) or LERF's canonical phrases "
                   f"({', '.join(CANONICAL_NEGATIVES)}; needs the run's CLIP weights).")
@click.option("--head", type=click.Choice(HEADS), default=DEFAULT_HEAD, show_default=True,
              help="Which semantic output the relevancy is computed from.")
@click.option("--ply", "ply_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the selected points (gsplat: 3DGS Gaussians) to this PLY.")
@clip_weights_option
@render_options
def query_cmd(run_dir: Path, text: str, threshold: float, negatives: str, head: str, ply_path: Path | None,
              clip_weights: Path | None, device: str, max_memory_gb: float | None) -> None:
    """Find the 3D points (Gaussians or surface points) that match TEXT and optionally export them.

    \b
    Example:
      laser query runs/demo "red apple" --ply apple.ply
    """
    from laser_gs.atomic import check_writable
    from laser_gs.errors import LaserError
    from laser_gs.export import export_points
    from laser_gs.memory import set_memory_limit
    from laser_gs.query import query_run
    from laser_gs.run import open_run

    set_memory_limit(max_memory_gb)
    if not text.strip():
        raise LaserError("the query text is empty; give a prompt such as \"red apple\"")
    if ply_path is not None:
        check_writable(ply_path, "--ply")
    config, backend, scene = open_run(run_dir, device)
    config = with_clip_weights(config, clip_weights)
    q = query_run(backend, config, scene, text, threshold, negatives, head)
    n, total = q.selected, len(q.points)
    click.echo(f"{q.prompt!r}: {n} of {total} points selected ({100 * n / max(1, total):.1f} %), relevancy >= "
               f"{threshold} against {len(q.names) - 1} negatives; max relevancy {float(q.relevancy.max()):.3f}")
    if ply_path is not None:
        if n == 0:
            raise LaserError(f"nothing matched {q.prompt!r} at --threshold {threshold}; lower it to export points")
        for path in export_points(q.points, ply_path, q.names, q.embeddings, keep=q.keep):
            click.echo(f"Wrote {path}")
