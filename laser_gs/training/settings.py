"""All settings of one training run: the trainer's, the shared semantic stage's and the backend's.

A run's settings come from a named preset of its backend, then ``--set`` overrides
(``semantic.beta=0.5``, ``gsplat.max_gaussians=50000``, ``trainer.checkpoint_every=100``),
then ``--iters`` (which moves every scheduled step of both stages proportionally).
``RUN/config.json`` stores the result; :meth:`TrainingSettings.from_dict` reads it back
to an equal object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from laser_gs.settings import AT_LEAST_ONE, NON_NEGATIVE, Settings, SettingsError, bounded
from laser_gs.training.semantic import SemanticSettings

if TYPE_CHECKING:
    from laser_gs.backends.protocol import Backend


@dataclass
class TrainerSettings(Settings):
    """What the trainer does around the steps of every backend."""

    checkpoint_every: int = bounded(500, AT_LEAST_ONE)
    """Steps between checkpoints (stage ends and Ctrl-C always save one)."""
    eval_every: int = bounded(0, NON_NEGATIVE)
    """Steps between held-out PSNR (and, in stage 2, mIoU) measurements shown in the progress bar and
    recorded in train_log.json; 0 turns them off."""
    max_bad_steps: int = bounded(20, AT_LEAST_ONE)
    """Consecutive non-finite steps that stop training (the last good state is checkpointed)."""


@dataclass
class ReconstructionSettings(Settings):
    """Base of every backend's settings: stage 1 (reconstruction) length; backends add their own fields."""

    #: the backend's fields that only stage 2 reads (its semantic field, lift, smoothing): ``laser train --from``
    #: may change these on a base run's stage 1
    stage2_fields: ClassVar[frozenset[str]] = frozenset()

    iters: int = bounded(30000, AT_LEAST_ONE)
    """Stage 1 (reconstruction) steps."""

    def stage1_dict(self) -> dict:
        """The settings stage 1 depends on (all but :attr:`stage2_fields`)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.stage2_fields}


@dataclass
class Preset:
    """A named starting point: the backend's, the semantic stage's and the trainer's settings."""

    model: ReconstructionSettings
    semantic: SemanticSettings
    trainer: TrainerSettings


def split_iterations(total: int, stage_iters: list[int]) -> list[int]:
    """Share ``total`` iterations across stages in the preset's proportions (each stage gets >= 1)."""
    base = sum(stage_iters)
    out = [max(1, round(total * n / base)) for n in stage_iters]
    out[-1] = max(1, total - sum(out[:-1])) if len(out) > 1 else total
    return out


@dataclass
class TrainingSettings:
    """The resolved settings of a run; sections are addressed as ``trainer``, ``semantic`` and the backend name."""

    backend: str
    model: ReconstructionSettings
    semantic: SemanticSettings
    trainer: TrainerSettings

    def sections(self) -> dict[str, Settings]:
        return {"trainer": self.trainer, "semantic": self.semantic, self.backend: self.model}

    def to_dict(self) -> dict[str, Any]:
        return {name: section.to_dict() for name, section in self.sections().items()}

    @classmethod
    def from_dict(cls, backend: type["Backend"], data: dict[str, Any]) -> "TrainingSettings":
        """Read :meth:`to_dict` output of a run of ``backend``; unknown sections and keys are errors."""
        names = ("trainer", "semantic", backend.name)
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise SettingsError(f"unknown settings section {unknown[0]!r}; valid sections: {', '.join(names)}")
        model = backend.settings_class.from_dict(data.get(backend.name, {}), prefix=f"{backend.name}.")
        return cls(backend.name, model,
                   SemanticSettings.from_dict(data.get("semantic", {}), prefix="semantic."),
                   TrainerSettings.from_dict(data.get("trainer", {}), prefix="trainer."))

    @classmethod
    def resolve(cls, backend: type["Backend"], preset: str, overrides: list[str] | None = None,
                iters: int | None = None, semantics: bool = True) -> "TrainingSettings":
        """Preset, then ``overrides`` (``"section.field=value"``), then ``iters`` shared across the stages."""
        if preset not in backend.presets:
            raise SettingsError(f"unknown preset {preset!r} for backend {backend.name}; choose one of "
                                f"{', '.join(backend.presets)}")
        p = backend.presets[preset]()
        settings = cls(backend.name, p.model, p.semantic, p.trainer)
        for assignment in overrides or []:
            settings = settings.with_override(assignment)
        if iters:
            settings = settings.with_iterations(iters, semantics)
        return settings

    def with_override(self, assignment: str) -> "TrainingSettings":
        """A copy with one ``section.field=value`` assignment applied (validated)."""
        path, eq, text = assignment.partition("=")
        section, dot, rest = path.strip().partition(".")
        sections = self.sections()
        if not eq or not dot or not rest:
            raise SettingsError(f"--set {assignment!r}: expected SECTION.FIELD=VALUE, e.g. semantic.beta=0.5 "
                                f"(sections: {', '.join(sections)})")
        if section not in sections:
            raise SettingsError(f"--set {assignment!r}: unknown section {section!r}; valid sections: "
                                f"{', '.join(sections)}")
        value = sections[section].with_value(rest, text.strip(), prefix=f"{section}.")
        attr = {"trainer": "trainer", "semantic": "semantic"}.get(section, "model")
        return TrainingSettings(**{**self.__dict__, attr: value})

    def with_iterations(self, total: int, semantics: bool) -> "TrainingSettings":
        """``total`` steps shared by the stages in the preset's proportions, every scheduled step moved along.

        Without semantics (``--features none``) stage 1 gets all of them.
        """
        old1, old2 = self.model.iters, self.semantic.iters
        n1, n2 = split_iterations(total, [old1, old2]) if semantics else (total, old2)
        return TrainingSettings(self.backend, self.model.scaled(old1, n1).replace(iters=n1),
                                self.semantic.scaled(old2, n2).replace(iters=n2), self.trainer)
