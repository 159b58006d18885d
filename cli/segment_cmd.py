"""``laser segment``: open-vocabulary segmentation of rendered views with any prompts."""

from __future__ import annotations

from pathlib import Path

import click

from laser_gs_cli.options import clip_weights_option, render_options, with_clip_weights
from laser_gs.choices import DEFAULT_HEAD, HEADS


@click.command("segment")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--prompts", required=True,
              help="Comma-separated prompts, e.g. \"red mug,table\". The run's classes need no CLIP weights; "
                   "other prompts are encoded with the run's CLIP text tower.")
@click.option("--views", default="annotated", show_default=True,
              help="'annotated', 'all', or comma-separated view indices such as 0,3.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: RUN/segment).")
@click.option("--head", type=click.Choice(HEADS), default=DEFAULT_HEAD, show_default=True,
              help="Rendered feature field, label volume, or their average (feature scored best on the "
                   "synthetic scene, docs/benchmarks.md).")
@clip_weights_option
@render_options
def segment_cmd(run_dir: Path, prompts: str, views: str, out_dir: Path | None, head: str, clip_weights: Path | None,
                device: str, max_memory_gb: float | None) -> None:
    """Segment views of a trained run with any text prompts.

    Per view: NAME_labels.png (class colours), NAME_labels.npy (indices into the prompts), NAME_overlay.png
    (segmentation over the render, with a legend) and NAME_relevancy_<i>_<prompt>.png per prompt.

    \b
    Example:
      laser segment runs/demo --prompts "red apple,blue mug,wooden floor" --views 0,5
    """
    from laser_gs.atomic import check_writable
    from laser_gs.memory import set_memory_limit
    from laser_gs.progress import progress, stderr_console
    from laser_gs.prompts import parse_prompts, prompt_embeddings
    from laser_gs.run import open_run
    from laser_gs.segment import resolve_views, segment_view, write_segmentation

    set_memory_limit(max_memory_gb)
    names = parse_prompts(prompts)
    check_writable(out_dir or run_dir / "segment", "--out")
    config, backend, scene = open_run(run_dir, device)
    config = with_clip_weights(config, clip_weights)
    indices = resolve_views(views, scene)
    names, text = prompt_embeddings(backend, config, names)
    out_dir = out_dir or run_dir / "segment"
    with progress("segment", len(indices), stderr_console(), unit=" views") as advance:
        for v in indices:
            rgb, probs = segment_view(backend, scene.cameras, v, text, head)
            write_segmentation(out_dir, scene.image_names[v], rgb, probs, names)
            advance()
    click.echo(f"Wrote {len(indices)} view(s) x {3 + len(names)} files to {out_dir}")
