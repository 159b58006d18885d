"""Run folders: the settings of a training run, saved with it and checked on resume."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from laser_gs import __version__
from laser_gs.atomic import atomic_write_text
from laser_gs.errors import LaserError

if TYPE_CHECKING:
    from laser_gs.backends.registry import Backend
    from laser_gs.data.scene import Scene

CONFIG_FILE = "config.json"
#: 2: typed settings (``overrides`` + resolved ``settings``) replaced ``backend_options``; shared trainer.
RUN_FORMAT_VERSION = 2


class RunError(LaserError):
    """A run folder that cannot be used as asked."""


@dataclass
class RunConfig:
    """Everything ``laser train`` was asked to do, and the settings it resolved to.

    ``overrides`` are the ``--set SECTION.FIELD=VALUE`` assignments as given; ``settings`` the resolved
    :class:`~laser_gs.training.settings.TrainingSettings` (preset, overrides, ``iters``) as a dict.
    """

    backend: str
    scene: str
    features: str = "precomputed"
    features_dir: str | None = None
    clip_weights: str | None = None
    clip_mode: str = "naclip"
    preset: str = "fast"
    iters: int | None = None
    overrides: list[str] = field(default_factory=list)
    seed: int = 0
    device: str = "auto"
    downscale: int | None = None
    holdout: int | None = None
    background: str = "white"
    settings: dict[str, Any] = field(default_factory=dict)
    base_run: str | None = None  # ``laser train --from``: the run whose stage 1 this one started from
    laser_gs_version: str = __version__
    run_format: int = RUN_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Settings that must match when a run is resumed (the rest may change, e.g. --iters to extend).
_RESUME_KEYS = ("backend", "scene", "features", "features_dir", "clip_mode", "preset", "seed", "downscale", "holdout",
                "background")


def read_run_config(run_dir: Path) -> RunConfig:
    """Read ``RUN/config.json``, refusing folders from another run format."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{path}: not found; is {run_dir} a run folder written by `laser train`?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON and bytes that are not UTF-8
        raise RunError(f"{path}: cannot read it as a run's settings ({type(exc).__name__}: {exc}); is {run_dir} "
                       "a run folder written by `laser train`?") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: holds a JSON {type(data).__name__}, not a run's settings (an object); is "
                       f"{run_dir} a run folder written by `laser train`?")
    if data.get("run_format") != RUN_FORMAT_VERSION:
        raise RunError(f"{path}: run format {data.get('run_format')!r} (laser_gs {data.get('laser_gs_version')}) "
                       f"is not the format {RUN_FORMAT_VERSION} this laser_gs {__version__} reads; "
                       "retrain with this version")
    return RunConfig.from_dict(data)


def prepare_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> None:
    """Create the run folder and save ``config.json``.

    A folder that already holds a run is only reused with ``resume=True`` and
    the same essential settings, so a typo never overwrites finished work.
    """
    run_dir = Path(run_dir)
    existing = run_dir / CONFIG_FILE
    if existing.exists():
        if not resume:
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        old = read_run_config(run_dir)
        diffs = [k for k in _RESUME_KEYS if getattr(old, k) != getattr(config, k)]
        if diffs:
            detail = ", ".join(f"{k}: {getattr(old, k)!r} -> {getattr(config, k)!r}" for k in diffs)
            raise RunError(f"cannot resume {run_dir} with different settings ({detail})")
    elif resume:
        raise RunError(f"--resume given but {run_dir} holds no run (no {CONFIG_FILE})")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(existing, json.dumps(config.to_dict(), indent=2))


def open_run(run_dir: Path, device: str = "cpu") -> tuple[RunConfig, "Backend", "Scene"]:
    """Load a finished run: its config, the trained backend (through the registry) and its scene."""
    from laser_gs.backends.registry import MODEL_FILE, get_backend
    from laser_gs.data import load_scene

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    model = run_dir / MODEL_FILE
    if not model.is_file():
        raise RunError(f"{model}: not found; the run has not finished training "
                       f"(continue it with `laser train ... --out {run_dir} --resume`)")
    backend = get_backend(config.backend).load(model, device=device)
    from laser_gs.progress import stderr_console

    backend.console = stderr_console()  # long phases (surface sampling for export / view / query) show progress
    scene = load_scene(config.scene, downscale=config.downscale, holdout=config.holdout, background=config.background)
    return config, backend, scene
