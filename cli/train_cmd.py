"""``laser train``: fit a backend to a scene through the backend registry."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import scene_load_options
from laser_gs.backends import get_backend, list_backends
from laser_gs.backends.registry import MODEL_FILE
from laser_gs.data import load_scene
from laser_gs.features.dense_clip import load_clip
from laser_gs.features.extract import load_features
from laser_gs.run import RunConfig, prepare_run_dir


def _backend_help() -> str:
    names = ", ".join(list_backends()) or "none installed yet"
    return f"3D representation to train (available: {names})."


@click.command("train")
@click.option("--backend", required=True, help=_backend_help())
@click.option("--scene", "scene_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Scene folder (LLFF, 3D-OVS or Blender).")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder for config.json, checkpoints and results.")
@click.option("--features", type=click.Choice(["clip", "precomputed", "none"]), default="precomputed",
              show_default=True, help="Dense feature source: CLIP online, SCENE/features/, or none "
                                      "(reconstruction only).")
@click.option("--features-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Precomputed feature folder (default: SCENE/features).")
@click.option("--clip-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Local CLIP weights for --features clip (default: the Hugging Face cache; never downloads).")
@click.option("--clip-mode", default="naclip", show_default=True, help="Dense CLIP mode for --features clip.")
@click.option("--preset", type=click.Choice(["default", "fast"]), default="fast", show_default=True,
              help="'default' follows the paper's schedule (GPU); 'fast' is sized for a CPU.")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Override the number of iterations.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="'auto', 'cpu' or 'cuda'.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out (also after a crash or "
                                            "kill: the result matches an uninterrupted run).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Steps between checkpoints (default: the preset's; stage ends are always saved).")
@click.option("--text-aug", is_flag=True,
              help="Turn on the paper's text augmentation loss (off by default: it lowered mIoU on our synthetic "
                   "scene, see docs/benchmarks.md).")
@scene_load_options
def train(backend: str, scene_dir: str, run_dir: Path, features: str, features_dir: Path | None, preset: str,
          iters: int | None, seed: int, clip_weights: Path | None, clip_mode: str, device: str, resume: bool,
          checkpoint_every: int | None, text_aug: bool, downscale: int | None, holdout: int | None,
          background: str) -> None:
    """Train a backend on a scene and save the run (config, checkpoints) in --out.

    \b
    Example:
      laser train --backend tensorf --scene demo_scene --out runs/demo --preset fast
    """
    backend_cls = get_backend(backend)
    scene = load_scene(scene_dir, downscale=downscale, holdout=holdout, background=background)
    # Check the feature source before anything is written: bad folders and missing weights fail here.
    feature_set = load_features(features, scene, features_dir=features_dir,
                                clip_loader=lambda: load_clip(clip_mode, weights=clip_weights))
    config = RunConfig(backend=backend, scene=str(Path(scene_dir).resolve()), features=features,
                       features_dir=str(features_dir) if features_dir else None, preset=preset, iters=iters,
                       seed=seed, device=device, downscale=downscale, holdout=holdout, background=background,
                       backend_options={"clip_weights": str(clip_weights) if clip_weights else None,
                                        "clip_mode": clip_mode,
                                        **({"checkpoint_every": checkpoint_every} if checkpoint_every else {}),
                                        **({"semantic": {"use_text_aug": True}} if text_aug else {})})
    prepare_run_dir(run_dir, config, resume=resume)
    model = backend_cls()
    model.fit(scene, config.to_dict(), run_dir, features=feature_set)
    click.echo(f"Saved {run_dir / MODEL_FILE}; evaluate with: laser eval {run_dir}")
