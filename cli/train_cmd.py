"""``laser train``: fit a backend to a scene through the backend registry and the shared trainer."""

from __future__ import annotations

from pathlib import Path

import click

from laser_gs_cli.options import scene_load_options


@click.command("train")
@click.option("--backend", default=None, help="3D representation to train: tensorf or gsplat (or an installed "
                                              "plugin; `laser config show` lists them). Required unless --from.")
@click.option("--scene", "scene_dir", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Scene folder (LLFF, 3D-OVS or Blender). Required unless --from.")
@click.option("--from", "base_run", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Start from this finished run's stage 1 (no reconstruction again): new classes, features or "
                   "semantic settings on its scene. Backend, scene, preset, --iters, seed and stage 1 settings "
                   "default to the base run's.")
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
@click.option("--preset", default="fast", show_default=True,
              help="Named settings: 'default' follows the paper's schedule (GPU); 'fast' is sized for a CPU.")
@click.option("--iters", type=click.IntRange(min=1), default=None,
              help="Total steps, shared by the stages in the preset's proportions (every scheduled step moves "
                   "along).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Change one setting, e.g. --set semantic.beta=0.5 --set gsplat.max_gaussians=50000 (repeatable; "
                   "`laser config show BACKEND` lists every field).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds initialisation and every step's random draws (same seed, same result).")
@click.option("--device", default="auto", show_default=True, help="'auto', 'cpu' or 'cuda'.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out (also after a crash or "
                                            "kill: the result matches an uninterrupted run).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Steps between checkpoints (default: the preset's; stage ends are always saved). Same as "
                   "--set trainer.checkpoint_every=N.")
@click.option("--text-aug", is_flag=True,
              help="Turn on the paper's text augmentation loss (off by default: it lowered mIoU on our synthetic "
                   "scene, see docs/benchmarks.md). Same as --set semantic.use_text_aug=true.")
@scene_load_options
def train(backend: str | None, scene_dir: str | None, base_run: Path | None, run_dir: Path, features: str,
          features_dir: Path | None, preset: str,
          iters: int | None, overrides: tuple[str, ...], seed: int, clip_weights: Path | None, clip_mode: str,
          device: str, resume: bool, checkpoint_every: int | None, text_aug: bool, downscale: int | None,
          holdout: int | None, background: str) -> None:
    """Train a backend on a scene and save the run (config, checkpoints, model) in --out.

    \b
    Example:
      laser train --backend tensorf --scene demo_scene --out runs/demo --preset fast
      laser train --backend gsplat --scene demo_scene --out runs/g --set semantic.beta=0.5
      laser train --from runs/g --out runs/g_lift --set semantic.method=lift
    """
    from laser_gs.backends.registry import MODEL_FILE
    from laser_gs.errors import LaserError
    from laser_gs.run import RunConfig
    from laser_gs.run_from import with_base_defaults
    from laser_gs.train import train_run

    if base_run is not None:  # what decides stage 1 comes from the base run unless given here
        source = click.get_current_context().get_parameter_source
        given = {k for k in ("backend", "scene_dir", "preset", "iters", "seed", "downscale", "holdout", "background")
                 if source(k) != click.core.ParameterSource.DEFAULT}
        values = dict(backend=backend, scene_dir=scene_dir, preset=preset, iters=iters, seed=seed,
                      downscale=downscale, holdout=holdout, background=background, overrides=tuple(overrides))
        values = with_base_defaults(base_run, values, given)
        backend, scene_dir, preset, iters, seed = (values[k] for k in ("backend", "scene_dir", "preset", "iters",
                                                                          "seed"))
        downscale, holdout, background, overrides = (values[k] for k in ("downscale", "holdout", "background",
                                                                         "overrides"))
    if backend is None or scene_dir is None:
        raise LaserError("give --backend and --scene (or --from BASE_RUN to start from a finished run's stage 1)")

    sets = list(overrides) + ([f"trainer.checkpoint_every={checkpoint_every}"] if checkpoint_every else []) \
        + (["semantic.use_text_aug=true"] if text_aug else [])
    config = RunConfig(backend=backend, scene=str(Path(scene_dir).resolve()), features=features,
                       features_dir=str(features_dir) if features_dir else None,
                       clip_weights=str(clip_weights) if clip_weights else None, clip_mode=clip_mode, preset=preset,
                       iters=iters, overrides=sets, seed=seed, device=device, downscale=downscale, holdout=holdout,
                       background=background)
    train_run(config, run_dir, resume=resume, base=base_run)
    click.echo(f"Saved {run_dir / MODEL_FILE}; evaluate with: laser eval {run_dir}")
