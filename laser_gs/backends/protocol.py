"""The backend protocol: what a 3D representation supplies so the shared trainer, evaluation and export can use it.

A backend is a representation (TensoRF volumes, 3D Gaussians, a voxel grid, ...).
The :class:`~laser_gs.training.trainer.Trainer` owns the loop, the stages and their
phases, optimizers and learning-rate schedules, resume and checkpoints, the
finite-step guard, evaluation and logs; a backend supplies the pieces, in the
spirit of gsplat's ``Strategy`` hooks and nerfstudio's ``Model``:

=====================  ===================================================================
``setup``              build the representation for a new run from a scene
``param_groups``       what trains in a phase (``reconstruct``, ``semantic``, ``joint``)
``begin_phase``        called when a phase starts or is resumed (e.g. build a field)
``reconstruction_loss`` stage 1 loss of one step
``semantic_batch``     stage 2: the per-sample tensors the shared losses consume
``before_backward`` /  hooks around the optimizer step with the trainer's optimizers
``after_step``         (densification, grid upsampling)
``render``             outputs of one camera
``points``             the points / Gaussians to export or query
``model_state`` /      the representation's tensors (the base adds settings, heads,
``load_model_state``   classes and text in :meth:`Backend.state_dict`)
=====================  ===================================================================

Shapes: ``R`` samples of a semantic batch, ``E`` attention width, ``K`` label code
width, ``D`` CLIP width, ``C`` classes, ``H x W`` pixels.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from rich.console import Console
from torch import Tensor, nn

from laser_gs.data.cameras import Cameras
from laser_gs.data.scene import Scene
from laser_gs.errors import LaserError
from laser_gs.export.records import PointSet
from laser_gs.progress import stderr_console
from laser_gs.semantics.calibration import PromptOffsets
from laser_gs.training.semantic import FeatureTargets, SemanticHeads
from laser_gs.training.settings import Preset, ReconstructionSettings, TrainingSettings

#: File name of a run's final model, loaded with :meth:`Backend.load`.
MODEL_FILE = "model.ckpt"

#: Outputs :meth:`Backend.render` may return; anything else is an error.
RENDER_OUTPUTS = ("rgb", "depth", "acc", "feature", "label", "logits", "segmentation")
SEMANTIC_OUTPUTS = ("feature", "label", "logits", "segmentation")

#: Training phases, in order: stage 1, stage 2 before and after ``semantic.joint_start``.
PHASES = ("reconstruct", "semantic", "joint")


@dataclass
class ParamGroup:
    """Parameters trained together with one Adam optimizer.

    The learning rate at a step is ``lr * decay ** (steps since the optimizer was built / stage length)``.
    """

    name: str
    params: list[nn.Parameter]
    lr: float
    decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


@dataclass
class Step:
    """Where one training step stands: global ``index``, its ``stage`` and the step ``local`` to that stage."""

    index: int
    stage: str
    local: int
    stage_iters: int
    seed: int


@dataclass
class ReconstructionLoss:
    """A stage 1 step: the scalar ``loss``, ``metrics`` for the progress bar, and ``aux`` handed back to the
    backend's :meth:`Backend.before_backward` / :meth:`Backend.after_step` (e.g. rasterization info)."""

    loss: Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    aux: Any = None


@dataclass
class SemanticBatch:
    """A stage 2 step's samples (rays or Gaussians), exactly what the shared losses consume.

    ``h`` ``[R, E]`` composited attention outputs, ``code`` ``[R, K]`` composited label codes, ``clip``
    ``[R, D]`` CLIP targets at the samples, ``aug`` ``[R, C]`` text-augmentation targets or None, and
    ``rgb_mse`` a scalar RGB loss when appearance is fine-tuned (phase ``joint``), else None.
    """

    h: Tensor
    code: Tensor
    clip: Tensor
    aug: Tensor | None = None
    rgb_mse: Tensor | None = None

    def __post_init__(self) -> None:
        R = self.h.shape[0]
        assert self.h.ndim == 2 and self.code.shape[0] == R and self.clip.shape[0] == R, \
            (self.h.shape, self.code.shape, self.clip.shape)
        assert self.aug is None or self.aug.shape[0] == R, self.aug.shape


class Backend(abc.ABC):
    """What every backend implements (see the module docstring for the protocol at a glance).

    Class attributes ``settings_class`` (its settings dataclass, a
    :class:`~laser_gs.training.settings.ReconstructionSettings`) and ``presets`` (name -> :class:`Preset`
    factory) make its settings typed and named; ``name`` is set by the registry.
    """

    name: ClassVar[str] = ""
    settings_class: ClassVar[type[ReconstructionSettings]] = ReconstructionSettings
    presets: ClassVar[dict[str, Callable[[], Preset]]] = {}

    def __init__(self) -> None:
        #: where tensors live (set before :meth:`setup` / :meth:`load_state_dict`)
        self.device = torch.device("cpu")
        #: the resolved settings of the run
        self.settings: TrainingSettings | None = None
        #: the shared semantic modules (None for runs without features)
        self.heads: SemanticHeads | None = None
        #: class prompts and their ``[C, D]`` text embeddings (empty / None without features)
        self.classes: list[str] = []
        self.text: Tensor | None = None
        #: where notes and progress of long phases go (the trainer points it at its own)
        self.console: Console = stderr_console(quiet=True)

    # ------------------------------------------------------------------ training pieces
    @abc.abstractmethod
    def setup(self, scene: Scene, settings: TrainingSettings, dim: int | None, seed: int) -> None:
        """Build the representation for a new run on ``scene`` (and the heads for CLIP width ``dim``).

        ``seed`` seeds the backend's own random draws (the trainer has seeded torch with it too). Also called
        before a resume (then :meth:`load_state_dict` replaces the tensors), so it keeps what training needs
        from the scene (views, cameras, images). The trainer seeds torch first.
        """

    @abc.abstractmethod
    def parameters(self) -> list[Tensor]:
        """Every trained tensor (frozen between phases, checked for NaN / Inf before checkpoints)."""

    @abc.abstractmethod
    def param_groups(self, phase: str) -> list[ParamGroup]:
        """What trains in ``phase`` (one of :data:`PHASES`); everything else is frozen by the trainer."""

    def begin_phase(self, phase: str, step: int, targets: FeatureTargets | None) -> None:
        """Called when ``phase`` starts or is resumed at global ``step``, before :meth:`param_groups`."""

    @abc.abstractmethod
    def reconstruction_loss(self, step: Step) -> ReconstructionLoss:
        """The stage 1 (photometric) loss of one step; random draws come from ``step`` (resume is exact)."""

    @abc.abstractmethod
    def semantic_batch(self, step: Step, targets: FeatureTargets, joint: bool) -> SemanticBatch:
        """One stage 2 step's samples; ``joint`` asks for ``rgb_mse`` too (appearance fine-tuning)."""

    def lift(self, targets: FeatureTargets) -> None:
        """Semantics without training (``semantic.method = "lift"``): average the CLIP features of every view
        onto the representation with its rendering weights. Backends without it refuse."""
        raise LaserError(f"the {self.name} backend has no training-free lift; use --set semantic.method=train")

    def finish_semantics(self, targets: FeatureTargets) -> bool:
        """Called once after a trained stage 2, before the class calibration (e.g. to fuse in the lift); True
        when it changed the semantics."""
        return False

    @property
    def heads_available(self) -> tuple[str, ...]:
        """Semantic heads this model can render: ``feature``, and ``label`` / ``ensemble`` with a label volume."""
        if self.heads is None:
            return ()
        return ("feature",) if self.settings.semantic.method == "lift" else ("feature", "label", "ensemble")

    def before_backward(self, step: Step, optimizers: dict[str, torch.optim.Optimizer], aux: Any) -> None:
        """Called between :meth:`reconstruction_loss` and its backward pass."""

    def after_step(self, step: Step, optimizers: dict[str, torch.optim.Optimizer], aux: Any, applied: bool) -> bool:
        """Called after every step (``applied``: the optimizers stepped). Returns True when the parameters were
        replaced (e.g. grids upsampled): the trainer then builds fresh optimizers and restarts the decay."""
        return False

    def training_state(self) -> dict[str, Any]:
        """Training-only state to checkpoint besides the model (e.g. densification statistics)."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state` output."""

    def summary(self) -> dict[str, Any]:
        """Figures for train_log.json (e.g. the number of Gaussians)."""
        return {}

    # ------------------------------------------------------------------ rendering and export
    def render(self, cameras: Cameras, index: int, outputs: tuple[str, ...] = ("rgb",),
               text: Tensor | None = None, **options: Any) -> dict[str, Tensor]:
        """Render camera ``index`` of ``cameras``: a dict with exactly the requested ``outputs``.

        ``rgb`` ``[H, W, 3]``, ``depth`` ``[H, W]``, ``acc`` ``[H, W]`` (opacity), ``feature`` ``[H, W, D]``
        (rendered CLIP feature), ``label`` ``[H, W, D]`` (label-volume distribution), ``logits`` ``[H, W, C]``
        (cosine of the feature against ``text`` ``[C, D]``, plus the run's class calibration offsets),
        ``segmentation`` ``[H, W]`` int64 (argmax of the logits, which backends may get from C composited class
        scores when no offsets apply). Backends compute only what is asked; the offsets are added here.
        """
        unknown = [o for o in outputs if o not in RENDER_OUTPUTS]
        if unknown:
            raise ValueError(f"unknown render output(s) {unknown}; choose from {RENDER_OUTPUTS}")
        if set(outputs) & set(SEMANTIC_OUTPUTS) and self.heads is None:
            raise LaserError("this run was trained without features (--features none); it has no semantic outputs")
        if "label" in outputs and "label" not in self.heads_available:
            raise LaserError("this run has no label volume (its semantics were lifted, not trained); use the "
                             "feature head")
        if set(outputs) & {"logits", "segmentation"}:
            if text is None:
                raise ValueError("logits and segmentation need text embeddings")
            assert text.ndim == 2 and text.shape[1] == self.heads.dim, (text.shape, self.heads.dim)
        asked = tuple(outputs)
        offsets = self.class_offsets(text) if set(outputs) & {"logits", "segmentation"} else None
        if offsets is not None:
            # the run's class calibration: offsets on the cosine logits; they do not commute with the feature
            # norm, so a label map comes from the exact logits, not from C composited class scores
            offsets = offsets.to(self.device)
            asked = tuple(dict.fromkeys(asked + ("logits",)))
        with torch.no_grad():
            out = self.render_outputs(cameras.to(self.device), index, asked,
                                      text.to(self.device) if text is not None else None, **options)
        if offsets is not None:
            out["logits"] = out["logits"] + offsets
            out["segmentation"] = out["logits"].argmax(dim=-1)
        return {k: out[k] for k in outputs}

    def class_offsets(self, text: Tensor | None) -> Tensor | None:
        """The run's class calibration ``[C]`` for the prompts ``text`` ``[C, D]`` (on ``text``'s device): added to
        cosine logits; None when the run has no semantics or no row of ``text`` has an offset."""
        if text is None or self.heads is None:
            return None
        return self.heads.class_offsets(text)

    @abc.abstractmethod
    def render_outputs(self, cameras: Cameras, index: int, outputs: tuple[str, ...], text: Tensor | None,
                       **options: Any) -> dict[str, Tensor]:
        """:meth:`render` after validation (outputs known, cameras and text on the device, no autograd)."""

    @abc.abstractmethod
    def points(self, cameras: Cameras, views: list[int]) -> PointSet:
        """The points this backend exports and queries (CPU tensors); field backends sample the surfaces seen
        by ``views`` of ``cameras``, Gaussian backends return their Gaussians."""

    # ------------------------------------------------------------------ state
    def build_heads(self, dim: int | None) -> None:
        """The shared semantic heads for CLIP width ``dim`` (None: no semantics)."""
        self.heads = SemanticHeads(self.settings.semantic, dim).to(self.device) if dim else None

    def use_settings(self, settings: TrainingSettings) -> None:
        """Train on with ``settings`` (a resumed run's invocation may change ablation switches, ratios, ...);
        shapes stay those of the loaded model."""
        self.settings = settings
        if self.heads is not None:
            self.heads.cfg = settings.semantic

    @abc.abstractmethod
    def model_state(self) -> dict[str, Any]:
        """The representation's tensors and what rebuilds it (tensors and plain containers only)."""

    @abc.abstractmethod
    def load_model_state(self, state: dict[str, Any]) -> None:
        """Rebuild the representation from :meth:`model_state` output on ``self.device`` (settings are set)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs: backend name, settings, heads, classes, text, model."""
        cpu = (lambda d: {k: v.detach().cpu() for k, v in d.items()})  # noqa: E731
        return {"backend": self.name, "settings": self.settings.to_dict(),
                "dim": self.heads.dim if self.heads is not None else 0,
                "heads": cpu(self.heads.state_dict()) if self.heads is not None else {},
                "prompt_offsets": self.heads.prompt_offsets.state() if self.heads is not None else None,
                "classes": list(self.classes), "text": self.text.cpu() if self.text is not None else None,
                "model": self.model_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild from :meth:`state_dict` output; a mismatch is a :class:`CheckpointError` asking to retrain."""
        from laser_gs.training.checkpoint import CheckpointError

        try:
            self.settings = TrainingSettings.from_dict(type(self), state["settings"])
            self.load_model_state(state["model"])
            self.build_heads(int(state["dim"]) or None)
            if self.heads is not None:
                self.heads.load_weights(state["heads"])
                self.heads.prompt_offsets = PromptOffsets.from_state(state.get("prompt_offsets"))
        except (RuntimeError, KeyError, LaserError) as exc:
            raise CheckpointError(f"the checkpoint does not match this laser_gs's {self.name} model (written by "
                                  f"another version?): {str(exc).splitlines()[0]}; retrain the run") from None
        self.classes = list(state.get("classes") or [])
        self.text = state["text"].to(self.device) if state.get("text") is not None else None

    def save(self, path: Path) -> None:
        """Write a checkpoint (atomically, checksummed) of :meth:`state_dict`."""
        from laser_gs.training.checkpoint import save_checkpoint

        save_checkpoint(Path(path), self.state_dict())

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "Backend":
        """Read a checkpoint written by :meth:`save`, refusing one of another backend."""
        from laser_gs.training.checkpoint import CheckpointError, load_checkpoint
        from laser_gs.training.schedule import resolve_device

        self = cls()
        self.device = resolve_device(device)
        state = load_checkpoint(Path(path), map_location="cpu")
        if state.get("backend") != cls.name:
            raise CheckpointError(f"{path}: a {state.get('backend')!r} checkpoint, not {cls.name}")
        self.load_state_dict(state)
        return self
