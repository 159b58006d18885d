"""``laser query``: select the 3D points / Gaussians that match one prompt."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import render_options
from laser_gs.errors import LaserError
from laser_gs.evaluation import DEFAULT_HEAD, HEADS
from laser_gs.memory import set_memory_limit
from laser_gs.prompts import prompt_embeddings
from laser_gs.query import CANONICAL_NEGATIVES, relevancy
from laser_gs.run import open_run


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
@render_options
def query_cmd(run_dir: Path, text: str, threshold: float, negatives: str, head: str, ply_path: Path | None,
              device: str, max_memory_gb: float | None) -> None:
    """Find the 3D points (Gaussians or surface points) that match TEXT and optionally export them.

    \b
    Example:
      laser query runs/demo "red apple" --ply apple.ply
    """
    set_memory_limit(max_memory_gb)
    prompt = text.strip()
    if not prompt:
        raise LaserError("the query text is empty; give a prompt such as \"red apple\"")
    config, backend, scene = open_run(run_dir, device)
    if negatives == "classes":
        others = [c for c in backend.classes if c != prompt]
        if not others:
            raise LaserError("the run has no other classes to compare against; use --negatives canonical")
    else:
        others = list(CANONICAL_NEGATIVES)
    names, embeddings = prompt_embeddings(backend, config, [prompt] + others)
    views = scene.splits.get("train") or list(range(scene.num_views))
    points = backend.semantic_points(scene.cameras, views)
    rel = relevancy(points, embeddings[0].cpu(), embeddings[1:].cpu(), head)
    keep = rel >= threshold
    n, total = int(keep.sum()), int(rel.numel())
    click.echo(f"{prompt!r}: {n} of {total} points selected ({100 * n / max(1, total):.1f} %), relevancy >= "
               f"{threshold} against {len(others)} negatives; max relevancy {float(rel.max()):.3f}")
    if ply_path is not None:
        if n == 0:
            raise LaserError(f"nothing matched {prompt!r} at --threshold {threshold}; lower it to export points")
        for path in backend.export(ply_path, names, embeddings, keep=keep, cameras=scene.cameras, views=views):
            click.echo(f"Wrote {path}")
