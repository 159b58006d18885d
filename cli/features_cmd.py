"""``laser features``: dense CLIP feature extraction into the precomputed format."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import click
from rich.console import Console

from laser_gs_cli.options import scene_load_options
from laser_gs.choices import CLIP_MODES


@click.group("features")
def features() -> None:
    """Dense CLIP features: extract them once, train from them many times.

    \b
    Example:
      laser features extract --scene my_scene --mode naclip --clip-weights ViT-B-16.pt
    """


@features.command("extract")
@click.option("--scene", "scene_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Scene folder.")
@click.option("--mode", type=click.Choice(CLIP_MODES), default="naclip", show_default=True,
              help="How the last CLIP block is modified for per-patch features (see docs/method.md).")
@click.option("--clip-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Local ViT-B-16-quickgelu OpenAI weights (.safetensors/.bin/.pt). "
                   "Default: the Hugging Face cache (never downloads).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: SCENE/features).")
@click.option("--window", type=click.IntRange(min=16), default=None,
              help="Sliding-window size in pixels for large images (default: twice CLIP's native size).")
@click.option("--force", is_flag=True, help="Replace an earlier extraction in --out (never another folder).")
@click.option("--tiny-random-clip", is_flag=True, hidden=True,
              help="Use a tiny randomly initialised CLIP (tests and offline smoke runs only).")
@scene_load_options
def extract(scene_dir: str, mode: str, clip_weights: Path | None, out: Path | None, window: int | None, force: bool,
            tiny_random_clip: bool, downscale: int | None, holdout: int | None, background: str) -> None:
    """Extract dense CLIP features of every view and the class text embeddings.

    Writes meta.json, <image>.npy [h, w, D] (float16), text_embeddings.npy and
    text_embeddings_aug.npy, the format `laser train --features precomputed` reads.

    \b
    Example:
      laser features extract --scene my_3dovs_scene --downscale 8 --clip-weights ViT-B-16.pt
    """

    from laser_gs.atomic import check_writable
    from laser_gs.data import load_scene
    from laser_gs.features.dense_clip import load_clip, tiny_clip
    from laser_gs.features.extract import extract_features
    from laser_gs.progress import progress
    from laser_gs.safety import mark_output, prepare_output_dir

    out = out or Path(scene_dir) / "features"
    # never the scene itself or a folder holding it; --force replaces only an earlier extraction
    replace = prepare_output_dir(out, [scene_dir], "features extract", force, "--out")
    check_writable(out, "--out")
    scene = load_scene(scene_dir, downscale=downscale, holdout=holdout, background=background)
    clip = tiny_clip(mode) if tiny_random_clip else load_clip(mode, weights=clip_weights)
    final, out = out, out.with_name(f".{out.name}.partial-{os.getpid()}")  # the old features stay until done
    shutil.rmtree(out, ignore_errors=True)
    console = Console(stderr=True)
    times: list[float] = []
    t0 = time.perf_counter()
    with progress("dense CLIP", scene.num_views, console, unit=" views") as advance:
        def on_view(i: int, seconds: float) -> None:
            times.append(seconds)
            advance(1, f"{seconds:.2f} s/view")
        try:
            fs = extract_features(scene, clip, out=out, on_view=on_view, window=window)
            mark_output(out, "features extract")
            nbytes = fs.nbytes_on_disk()
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise
    if replace:
        shutil.rmtree(final)
    elif final.is_dir():
        final.rmdir()  # empty
    out = out.rename(final)
    h, w = fs.grid_size
    console.print(f"[green]Wrote[/green] {out}: {scene.num_views} views, grid {w}x{h}, dim {fs.dim}, "
                  f"{sum(times) / len(times):.3f} s/view, {nbytes / 1e6:.2f} MB on disk, "
                  f"{time.perf_counter() - t0:.1f} s total ({clip.name})")
