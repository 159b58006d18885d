"""Typed settings: exact round trips, unknown keys and bad values refused, overrides, schedule scaling, docs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from laser_gs.backends.registry import get_backend, list_backends
from laser_gs.settings import Settings, SettingsError, field_docs, schedule
from laser_gs.training.semantic import SemanticSettings
from laser_gs.training.settings import TrainingSettings


@dataclass
class _Demo(Settings):
    mode: Literal["a", "b"] = "a"
    """Which way."""
    at: tuple[int, ...] = schedule((100, 200, 900), "steps")
    """Steps at which something happens."""
    start: int = schedule(300, minimum=5)
    """A scheduled step."""
    nested: SemanticSettings = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.nested is None:
            self.nested = SemanticSettings()


@pytest.mark.parametrize("backend", list_backends())
@pytest.mark.parametrize("preset", ["default", "fast"])
def test_every_preset_round_trips_exactly(backend, preset):
    cls = get_backend(backend)
    s = TrainingSettings.resolve(cls, preset, ["semantic.beta=0.25", "trainer.eval_every=7"], iters=123)
    again = TrainingSettings.from_dict(cls, s.to_dict())
    assert again == s and again.to_dict() == s.to_dict()
    assert s.semantic.beta == 0.25 and s.trainer.eval_every == 7
    assert s.model.iters + s.semantic.iters == 123


def test_unknown_keys_and_bad_values_are_refused_with_the_valid_ones():
    with pytest.raises(SettingsError, match=r"unknown setting semantic\.bta; valid semantic settings: method, iters, "):
        SemanticSettings.from_dict({"bta": 1.0}, prefix="semantic.")
    with pytest.raises(SettingsError, match="'c' is not one of"):
        _Demo.from_dict({"mode": "c"})
    with pytest.raises(SettingsError, match="expected 3 values"):
        from laser_gs.backends.tensorf.config import TensoRFSettings
        TensoRFSettings.from_dict({"density_comps": [1, 2]})
    with pytest.raises(SettingsError, match="must be at least 1"):
        SemanticSettings().with_value("iters", "0")
    with pytest.raises(SettingsError, match="is a group"):
        _Demo().with_value("nested", "1")
    assert _Demo().with_value("nested.beta", "0.7").nested.beta == 0.7
    assert _Demo().with_value("at", "5,6").at == (5, 6) and _Demo().with_value("at", "[7]").at == (7,)


def test_scaling_moves_scheduled_steps_only():
    d = _Demo().scaled(1000, 500)
    assert d.at == (50, 100, 450) and d.start == 150
    assert _Demo(at=(100, 1000)).scaled(1000, 500).at == (50,)  # a step at the stage's end falls off it
    d = _Demo().scaled(1000, 100)
    assert d.at == (10, 20, 90) and d.start == 30
    assert _Demo().scaled(1000, 10).start == 5  # the minimum
    assert _Demo().scaled(1000, 500).nested == SemanticSettings()  # nested groups are scaled by their owner


def test_every_field_has_a_docstring():
    for backend in list_backends():
        s = TrainingSettings.resolve(get_backend(backend), "fast")
        for section in s.sections().values():
            docs = field_docs(type(section))
            missing = [n for n in section.field_types() if not docs.get(n)]
            assert not missing, (type(section).__name__, missing)
