"""``laser make-scene``: write a synthetic labeled scene (the embedded default data)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
from rich.console import Console

from laser_gs_cli.options import parse_size


@click.command("make-scene")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed (cameras, feature noise, and the objects of a random layout).")
@click.option("--size", "size", default="320x240", show_default=True, help="Image size WIDTHxHEIGHT.")
@click.option("--views", type=click.IntRange(min=4), default=24, show_default=True, help="Number of views.")
@click.option("--annotated", type=click.IntRange(min=1), default=4, show_default=True,
              help="Number of views written with GT masks.")
@click.option("--dim", type=click.IntRange(min=8), default=512, show_default=True,
              help="Width of the synthetic dense features (CLIP ViT-B/16: 512).")
@click.option("--layout", type=click.Choice(["tabletop", "random"]), default="tabletop", show_default=True,
              help="'tabletop': the six fixed classes; 'random': --objects random objects (see --similar, "
                   "--small, --camouflage).")
@click.option("--objects", type=click.IntRange(1, 8), default=4, show_default=True,
              help="Random layout: number of objects besides the background.")
@click.option("--similar", type=click.IntRange(min=0), default=2, show_default=True,
              help="Random layout: how many objects share one colour (2 or more make colour-alike objects).")
@click.option("--small", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random layout: how many of the objects are small.")
@click.option("--camouflage", is_flag=True,
              help="Random layout: one object has its background's colour (a grey pillar before a grey wall).")
@click.option("--cameras", type=click.Choice(["forward", "orbit"]), default="forward", show_default=True,
              help="'forward': a forward-facing rig (LLFF-like); 'orbit': an arc around the objects over an "
                   "open floor under a sky (random layout).")
@click.option("--noise", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Strength of the features' errors and noise (1: calibrated so the 2D teacher is clearly "
                   "imperfect).")
@click.option("--text-aug-model", type=click.Choice(["none", "sharper", "noise"]), default="none",
              show_default=True,
              help="Augmented-text embeddings written with the features: none (`laser train --text-aug` is then "
                   "refused), 'sharper' (repeated prompts modelled as text nearer the object, an assumption), or "
                   "'noise' (plain text plus noise, as earlier versions).")
@click.option("--no-features", is_flag=True, help="Skip the features/ directory.")
@click.option("--force", is_flag=True, help="Replace OUT if an earlier `laser make-scene` made it (never anything "
              "else).")
def make_scene(out: Path, seed: int, size: str, views: int, annotated: int, dim: int, layout: str, objects: int,
               similar: int, small: int, camouflage: bool, cameras: str, noise: float, text_aug_model: str,
               no_features: bool, force: bool) -> None:
    """Render a synthetic labeled scene in the 3D-OVS layout, with GT masks and dense features.

    The default tabletop has six classes (brick wall, wooden floor, red apple, red book, blue mug, green
    ball; the two red objects share a colour). Random layouts vary the objects and their hard cases, and
    orbit cameras circle them (360-degree-style). Labels are exact per pixel, and the synthetic dense
    features carry CLIP-like noise, so the full pipeline runs and is scored without CLIP weights.

    \b
    Example:
      laser make-scene demo_scene --seed 1 --size 320x240 --views 24
      laser make-scene hard --layout random --objects 5 --similar 3 --small 1 --camouflage --seed 4
    """
    from laser_gs.atomic import check_writable
    from laser_gs.progress import progress
    from laser_gs.safety import mark_output, prepare_output_dir
    from laser_gs.synthetic import SceneSpec, make_scene as generate

    w, h = parse_size(size)
    if annotated > views:
        raise click.BadParameter(f"--annotated {annotated} exceeds --views {views}", param_hint="--annotated")
    if layout == "tabletop" and cameras == "orbit":
        raise click.BadParameter("the tabletop has a wall behind it; use --layout random with orbit cameras",
                                 param_hint="--cameras")
    if similar > objects:
        raise click.BadParameter(f"--similar {similar} exceeds --objects {objects}", param_hint="--similar")
    if prepare_output_dir(out, [], "make-scene", force):  # --force: only a scene an earlier make-scene made
        shutil.rmtree(out)
    check_writable(out, "OUT")
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, "make-scene")  # first: an interrupted generation is still ours to redo
    spec = SceneSpec(width=w, height=h, views=views, annotated=annotated, seed=seed, feature_dim=dim, layout=layout,
                     objects=objects, similar=similar, small=small, camouflage=camouflage, cameras=cameras,
                     noise=noise, text_aug=text_aug_model)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with progress(f"rendering {views} views at {w}x{h}", views, console, unit=" views") as advance:
        scene = generate(out, spec, with_features=not no_features, on_view=advance)
    console.print(f"[green]Wrote[/green] {out}: {views} views {w}x{h}, classes {', '.join(scene.classes)}; "
                  f"annotated views {scene.annotated}, {'no features' if no_features else f'features dim {dim}'} "
                  f"in {time.perf_counter() - t0:.1f} s")
