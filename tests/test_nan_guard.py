"""Non-finite losses: skipped and logged, training goes on; a run of them stops with a good checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from laser_gs.training.loop import Stage, StepResult, TrainingDiverged, make_console, run_stages


def _loop(bad: set[int], state_ok=None, total: int = 40):
    applied, saved = [], []

    def step(it: int) -> StepResult:
        if it in bad:
            return StepResult(applied=False)
        applied.append(it)
        return StepResult({"loss": 1.0 / (it + 1)})

    log = run_stages([Stage("fit", 0, total)], 0, step, saved.append, checkpoint_every=10,
                     console=make_console(quiet=True), max_bad_steps=5, state_ok=state_ok)
    return log, applied, saved


def test_isolated_bad_steps_are_skipped_and_counted():
    log, applied, saved = _loop({3, 4, 17})
    assert log.skipped_steps == 3 and len(applied) == 37 and saved[-1] == 40


def test_repeated_bad_steps_stop_with_a_checkpoint_of_the_good_state():
    with pytest.raises(TrainingDiverged, match="5 non-finite steps in a row.*checkpointed"):
        _loop(set(range(12, 40)), state_ok=lambda: True)


def test_non_finite_parameters_are_not_checkpointed():
    saved: list[int] = []

    def step(it: int) -> StepResult:
        return StepResult(applied=it < 12)

    with pytest.raises(TrainingDiverged, match="last periodic checkpoint"):
        run_stages([Stage("fit", 0, 40)], 0, step, saved.append, checkpoint_every=10,
                   console=make_console(quiet=True), max_bad_steps=5, state_ok=lambda: False)
    assert saved == [10]  # the periodic one only, nothing written at the divergence


def test_gsplat_fit_survives_injected_nan_losses(generated, tmp_path, monkeypatch):
    """NaN injected into the photometric loss of some steps: skipped, logged, parameters stay finite."""
    import json

    import laser_gs.backends.gsplat.backend as gb
    from conftest import fit

    real_ssim, calls = gb.ssim, {"n": 0}

    def poisoned(a, b):
        calls["n"] += 1
        value = real_ssim(a, b)
        return value * math.nan if calls["n"] in (2, 3, 5) else value

    monkeypatch.setattr(gb, "ssim", poisoned)
    _, backend = fit("gsplat", generated[0], tmp_path / "run", 12, features=False)
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert log["skipped_steps"] == 3
    assert all(torch.isfinite(v).all() for v in backend.params.values())
