"""Train a run folder: resolve the settings, build the backend through the registry, run the shared trainer."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from laser_gs.backends.protocol import Backend
from laser_gs.atomic import check_writable
from laser_gs.backends.registry import get_backend
from laser_gs.data import load_scene
from laser_gs.data.scene import Scene
from laser_gs.errors import LaserError
from laser_gs.evaluation import training_evaluator
from laser_gs.features.precomputed import FeatureSet
from laser_gs.run import RunConfig, prepare_run_dir
from laser_gs.run_from import base_stage1, check_feature_width, check_same_stage1, copy_stage1, record_base
from laser_gs.run_lock import run_lock
from laser_gs.training.schedule import resolve_device
from laser_gs.training.settings import TrainingSettings
from laser_gs.training.trainer import LOG_FILE, Trainer


def load_run_inputs(config: RunConfig) -> tuple[Scene, FeatureSet | None]:
    """The scene and dense features ``config`` names (bad folders and missing CLIP weights fail here)."""
    from laser_gs.features.dense_clip import load_clip
    from laser_gs.features.extract import load_features

    scene = load_scene(config.scene, downscale=config.downscale, holdout=config.holdout, background=config.background)
    features = load_features(config.features, scene, features_dir=config.features_dir,
                             clip_loader=lambda: load_clip(config.clip_mode, weights=config.clip_weights))
    return scene, features


def train_run(config: RunConfig, run_dir: Path, resume: bool = False, console: Console | None = None,
              inputs: tuple[Scene, FeatureSet | None] | None = None, evaluate: bool = True,
              base: Path | None = None) -> Backend:
    """Train (or with ``resume`` continue) the run ``config`` describes in ``run_dir``; returns the trained backend.

    Settings are resolved and checked before anything is written: preset, ``config.overrides``, then
    ``config.iters``; the result is saved in ``RUN/config.json``. ``inputs`` passes an already loaded
    scene and features. ``base``: a finished run whose stage 1 this new run starts from (it must be the stage 1
    this run would train; :mod:`laser_gs.run_from`).
    """
    if base is not None and resume:
        raise LaserError("--from starts a new run from a base run's stage 1; to continue this run, give --resume "
                         "without --from")
    backend_cls = get_backend(config.backend)
    device = resolve_device(config.device)
    check_writable(run_dir, "--out")
    scene, features = inputs if inputs is not None else load_run_inputs(config)
    settings = TrainingSettings.resolve(backend_cls, config.preset, config.overrides, config.iters,
                                        semantics=features is not None)
    if settings.semantic.use_text_aug and features is not None and features.text_aug is None:
        raise LaserError(f"--text-aug needs augmented-prompt text embeddings (text_embeddings_aug.npy), and "
                         f"{features.directory} has none: extract the features with CLIP (`laser features extract`), "
                         "or generate the scene with `laser make-scene --text-aug-model sharper`, or train without "
                         "--text-aug")
    config.settings = settings.to_dict()
    if base is not None:
        base_config, stage1, stage1_step = base_stage1(base)
        check_same_stage1(base_config, base, config, settings.model.stage1_dict())
        if features is None:
            raise LaserError(f"--from {base}: a run without features has no stage 2; there is nothing to train")
        check_feature_width(stage1, base, features.dim)
        config.base_run = str(Path(base).resolve())
    with run_lock(run_dir, "train --resume" if resume else "train"):  # one writer per run folder
        prepare_run_dir(run_dir, config, resume=resume)
        if base is not None:
            copy_stage1(stage1, run_dir, stage1_step)
        backend = backend_cls()
        backend.device = device
        trainer = Trainer(backend, scene, settings, run_dir, features, seed=config.seed,
                          evaluate=training_evaluator(scene) if evaluate else None, console=console)
        if base is not None:
            trainer.console.print(f"stage 1 from {base} (step {stage1_step}): not trained again")
        trainer.fit()
        if base is not None:
            record_base(run_dir / LOG_FILE, base, stage1_step)
    return backend
