"""``laser render``: RGB and segmentation frames along a camera path (PNG frames + animated GIF)."""

from __future__ import annotations

from pathlib import Path

import click

from laser_gs.choices import DEFAULT_HEAD, HEADS, PATHS
from laser_gs_cli.options import clip_weights_option, parse_size, render_options, with_clip_weights



@click.command("render")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--path", "path_kind", type=click.Choice(PATHS), default="spiral", show_default=True,
              help="'spiral' (forward-facing scenes) / orbit (360-degree scenes) built from the scene's cameras, "
                   "or the scene's own train / test cameras.")
@click.option("--frames", type=click.IntRange(min=1), default=30, show_default=True,
              help="Frames of a spiral; train / test paths are capped at this many cameras.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: RUN/render_<path>).")
@click.option("--prompts", default=None, help="Segment with these prompts (default: the run's classes).")
@click.option("--head", type=click.Choice(HEADS), default=DEFAULT_HEAD, show_default=True,
              help="Semantic output the segmentation is taken from.")
@click.option("--size", default=None, help="Frame size WxH (default: the scene's).")
@click.option("--fps", type=click.IntRange(min=1), default=10, show_default=True, help="GIF frame rate.")
@click.option("--no-gif", is_flag=True, help="Only write PNG frames.")
@clip_weights_option
@render_options
def render_cmd(run_dir: Path, path_kind: str, frames: int, out_dir: Path | None, prompts: str | None, head: str,
               size: str | None, fps: int, no_gif: bool, clip_weights: Path | None, device: str,
               max_memory_gb: float | None) -> None:
    """Render RGB (and segmentation, for runs with semantics) along a camera path.

    Writes frame_0000.png ... (render | segmentation overlay | legend) and render.gif to the output folder.

    \b
    Example:
      laser render runs/demo --path spiral --frames 40
    """

    from laser_gs.atomic import check_writable
    from laser_gs.bench import scaled_cameras
    from laser_gs.data.camera_path import spiral_path
    from laser_gs.data.images import write_png
    from laser_gs.memory import set_memory_limit
    from laser_gs.progress import progress, stderr_console
    from laser_gs.prompts import optional_prompt_embeddings, parse_prompts
    from laser_gs.render_path import render_frame, write_gif
    from laser_gs.run import open_run

    set_memory_limit(max_memory_gb)
    names = parse_prompts(prompts)
    check_writable(out_dir or run_dir / f"render_{path_kind}", "--out")
    config, backend, scene = open_run(run_dir, device)
    config = with_clip_weights(config, clip_weights)
    names, text = optional_prompt_embeddings(backend, config, names)
    if path_kind == "spiral":
        cams = spiral_path(scene.cameras, frames, forward_facing=scene.forward_facing)
    else:
        views = scene.splits.get(path_kind) or []
        if not views:
            raise click.BadParameter(f"the scene has no {path_kind} split; use --path spiral", param_hint="--path")
        cams = scene.cameras[views[:frames]]
    if size:
        cams = scaled_cameras(cams, list(range(len(cams))), parse_size(size))
    out_dir = out_dir or run_dir / f"render_{path_kind}"
    pictures = []
    with progress("render", len(cams), stderr_console(), unit=" frames") as advance:
        for i in range(len(cams)):
            frame = render_frame(backend, cams, i, text, names, head)
            write_png(out_dir / f"frame_{i:04d}.png", frame)
            if not no_gif:
                pictures.append(frame)
            advance()
    click.echo(f"Wrote {len(cams)} frames to {out_dir}")
    if pictures:
        click.echo(f"Wrote {write_gif(out_dir / 'render.gif', pictures, fps)}")
