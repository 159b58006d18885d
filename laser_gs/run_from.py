"""A run that starts from another run's stage 1 (``laser train --from BASE``).

New prompts, another feature source or another semantic method on a scene already reconstructed, without
paying stage 1 again: the new run gets BASE's end-of-stage-1 checkpoint as its newest checkpoint and the
trainer continues from it, exactly as ``--resume`` does. Refused when BASE's stage 1 is not the one the new
run would train: another backend, scene, seed, image loading or reconstruction settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from laser_gs.atomic import atomic_open, atomic_write_text
from laser_gs.run import RunConfig, RunError, read_run_config
from laser_gs.safety import resolved
from laser_gs.training.checkpoint import CKPT_DIR, STAGE1_FILE, step_path

#: what, besides the backend's own settings, decides what stage 1 computes
STAGE1_KEYS = ("backend", "seed", "downscale", "holdout", "background")


def with_base_defaults(base_dir: Path, values: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """``laser train --from``'s options: what decides stage 1 (backend, scene, preset, iters, seed, image
    loading) is BASE's unless ``given`` names it; BASE's own ``--set BACKEND.x=...`` come first in ``overrides``
    (later ones win)."""
    base = read_run_config(base_dir)
    out = dict(values)
    for key, theirs in (("backend", base.backend), ("scene_dir", base.scene), ("preset", base.preset),
                        ("iters", base.iters), ("seed", base.seed), ("downscale", base.downscale),
                        ("holdout", base.holdout), ("background", base.background)):
        if key not in given or out[key] is None:
            out[key] = theirs
    out["overrides"] = tuple(o for o in base.overrides if o.startswith(f"{base.backend}.")) + tuple(values["overrides"])
    return out


def base_stage1(base_dir: Path) -> tuple[RunConfig, Path, int]:
    """BASE's config, its end-of-stage-1 checkpoint and that checkpoint's step; a clear error when it has none."""
    base_dir = Path(base_dir)
    config = read_run_config(base_dir)
    try:
        step = int(config.settings[config.backend]["iters"])
        semantics = config.features != "none"
    except (KeyError, TypeError, ValueError):
        raise RunError(f"--from {base_dir}: its config.json has no resolved {config.backend} settings; retrain it "
                       "with this version") from None
    # a trained stage 2 keeps a copy of stage 1's end; a lift run (no stage 2 steps) ends at that step
    for checkpoint in (base_dir / CKPT_DIR / STAGE1_FILE, step_path(base_dir, step)):
        if semantics and checkpoint.is_file():
            return config, checkpoint, step
    raise RunError(f"--from {base_dir}: no stage 1 checkpoint ({CKPT_DIR}/{STAGE1_FILE}); a run keeps one when it "
                   "trained semantics (or lifted them) after stage 1: train the base run with features first")


def check_same_stage1(base: RunConfig, base_dir: Path, config: RunConfig, stage1: dict[str, Any]) -> None:
    """Refuse a new run whose stage 1 would differ from BASE's (``stage1``: its resolved backend settings)."""
    diffs = [f"{k}: {getattr(base, k)!r} here {getattr(config, k)!r}" for k in STAGE1_KEYS
             if getattr(base, k) != getattr(config, k)]
    if resolved(base.scene) != resolved(config.scene):
        diffs.insert(0, f"scene: {base.scene} here {config.scene}")
    theirs = base.settings.get(base.backend, {}) if base.backend == config.backend else stage1
    diffs += [f"{base.backend}.{k}: {theirs.get(k)!r} here {v!r}" for k, v in stage1.items() if theirs.get(k) != v]
    if diffs:
        raise RunError(f"--from {base_dir}: its stage 1 is not the one this run would train ({'; '.join(diffs)}); "
                       "give the base run's scene, backend and stage 1 settings, or train from scratch")


def check_feature_width(checkpoint: Path, base_dir: Path, dim: int) -> None:
    """Refuse features of another CLIP width than BASE's: its stage 1 state holds heads of that width."""
    from laser_gs.training.checkpoint import load_checkpoint

    theirs = int(load_checkpoint(checkpoint)["model"].get("dim") or 0)
    if theirs and theirs != dim:
        raise RunError(f"--from {base_dir}: its features are {theirs}-dimensional and these are {dim}-dimensional; "
                       "--from keeps the base run's CLIP width: use features of the same CLIP model, or train "
                       "from scratch")


def copy_stage1(checkpoint: Path, run_dir: Path, step: int) -> None:
    """Put BASE's stage-1 checkpoint in ``run_dir`` as its newest checkpoint and as its own stage-1 copy (so this
    run can be a base in turn). Written atomically (:func:`~laser_gs.atomic.atomic_open`): never half a
    checkpoint, and a full disk is reported as such."""
    for target in (step_path(run_dir, step), Path(run_dir) / CKPT_DIR / STAGE1_FILE):
        with open(checkpoint, "rb") as src, atomic_open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def record_base(log_path: Path, base_dir: Path, step: int) -> None:
    """Note in ``train_log.json`` that stage 1 came from BASE (and was not trained here)."""
    log = json.loads(log_path.read_text(encoding="utf-8"))
    log["stage1_from"] = {"run": str(resolved(base_dir)), "step": step}
    atomic_write_text(log_path, json.dumps(log, indent=2))
