"""The one training procedure of every backend.

Stages and phases::

    stage "reconstruct"  [0, n1)            phase "reconstruct"   (photometric fit)
    stage "semantics"    [n1, n1 + n2)      phase "semantic"      (geometry frozen; shared stage-2 losses)
                         from joint_start   phase "joint"         (+ appearance and the RGB loss, if the
                                                                   backend declares joint parameters)

The trainer owns the loop (:func:`~laser_gs.training.loop.run_stages`: progress,
Ctrl-C, the finite-step guard), which parameters train in which phase, one Adam
per :class:`~laser_gs.backends.protocol.ParamGroup` and its learning-rate decay,
resume and checkpoints, periodic evaluation (a callback, so backends never import
evaluation), the shared stage-2 losses and ``train_log.json``. Entering a phase
whose parameter groups differ from the last phase's builds fresh optimizers and
restarts the decay (TensoRF and the Laser code do so at ``joint_start``); a backend
asks for the same after replacing its parameters (grid upsampling).

Every random draw of a step comes from the step number, and the checkpoint holds
the optimizers, the phase and the backend's training state, so a resumed run
takes exactly the steps an uninterrupted run takes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console

from laser_gs.atomic import atomic_write_text
from laser_gs.backends.protocol import MODEL_FILE, Backend, ParamGroup, Step
from laser_gs.data.scene import Scene
from laser_gs.features.precomputed import FeatureSet
from laser_gs.memory import peak_memory_mb
from laser_gs.training.checkpoint import load_latest, save_step
from laser_gs.training.calibrate import calibrate_classes
from laser_gs.training.loop import LoopLog, Stage, StepResult, all_finite, make_console, run_stages
from laser_gs.training.schedule import decayed_lr
from laser_gs.training.semantic import FeatureTargets, semantic_losses
from laser_gs.training.settings import TrainingSettings

#: ``evaluate(backend, semantics)`` -> metrics such as ``test_psnr`` and (in stage 2) ``miou``.
Evaluator = Callable[[Backend, bool], dict[str, float]]

LOG_FILE = "train_log.json"


class Trainer:
    """Trains ``backend`` on ``scene`` in ``run_dir`` (resuming a checkpoint found there).

    Args:
        backend: a fresh backend instance (``device`` set).
        scene: the scene.
        settings: the run's resolved settings.
        run_dir: checkpoints, ``model.ckpt`` and ``train_log.json`` go here.
        features: dense CLIP features (None: reconstruction only).
        seed: seeds initialisation and every step's random draws.
        evaluate: called every ``trainer.eval_every`` steps and at stage ends.
        console: where progress goes.
    """

    def __init__(self, backend: Backend, scene: Scene, settings: TrainingSettings, run_dir: Path,
                 features: FeatureSet | None = None, seed: int = 0, evaluate: Evaluator | None = None,
                 console: Console | None = None):
        self.backend = backend
        self.scene = scene
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.features = features
        self.seed = int(seed)
        self.evaluate = evaluate
        self.console = console or make_console()
        self.targets: FeatureTargets | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.groups: list[ParamGroup] = []
        self.phase: str | None = None
        #: the step from which the current optimizers' learning rates decay
        self.reset_step = 0
        self.n1 = settings.model.iters
        self.lift = features is not None and settings.semantic.method == "lift"
        self.n2 = settings.semantic.iters if features is not None and not self.lift else 0

    # ------------------------------------------------------------------ schedule
    def phase_at(self, step: int) -> str:
        if step < self.n1:
            return "reconstruct"
        return "joint" if step - self.n1 >= self.settings.semantic.joint_start else "semantic"

    def _step_info(self, index: int) -> Step:
        if index < self.n1:
            return Step(index, "reconstruct", index, self.n1, self.seed)
        return Step(index, "semantics", index - self.n1, self.n2, self.seed)

    def _build_optimizers(self, groups: list[ParamGroup]) -> None:
        """One Adam per group; every parameter of the backend not in a group is frozen."""
        for p in self.backend.parameters():
            p.requires_grad_(False)
        for g in groups:
            for p in g.params:
                p.requires_grad_(True)
        self.groups = groups
        self.optimizers = {g.name: torch.optim.Adam([{"params": g.params, "lr": g.lr}], betas=g.betas, eps=g.eps)
                           for g in groups}

    def _enter_phase(self, phase: str, step: int) -> None:
        self.backend.begin_phase(phase, step, self.targets)
        groups = self.backend.param_groups(phase)
        if [g.name for g in groups] != [g.name for g in self.groups] or self.phase is None:
            self._build_optimizers(groups)
            self.reset_step = step
        self.phase = phase

    def _set_learning_rates(self, step: Step) -> None:
        for g in self.groups:
            lr = decayed_lr(g.lr, g.decay, step.index - self.reset_step, step.stage_iters)
            for group in self.optimizers[g.name].param_groups:
                group["lr"] = lr

    # ------------------------------------------------------------------ one step
    def _apply(self, loss: torch.Tensor, metrics: dict[str, float]) -> StepResult:
        """Backward and step every optimizer unless the loss or a gradient is not finite."""
        if not torch.isfinite(loss):
            self._zero_grad()
            return StepResult(applied=False)
        loss.backward()
        grads = [p.grad for opt in self.optimizers.values() for g in opt.param_groups for p in g["params"]
                 if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            self._zero_grad()
            return StepResult(applied=False)
        for opt in self.optimizers.values():
            opt.step()
        self._zero_grad()
        return StepResult(metrics)

    def _zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def step(self, index: int) -> StepResult:
        """Global step ``index``: phase changes, learning rates, the loss, the update and the backend's hooks."""
        phase = self.phase_at(index)
        if phase != self.phase:
            self._enter_phase(phase, index)
        step = self._step_info(index)
        self._set_learning_rates(step)
        aux = None
        if phase == "reconstruct":
            out = self.backend.reconstruction_loss(step)
            loss, metrics, aux = out.loss, dict(out.metrics), out.aux
            self.backend.before_backward(step, self.optimizers, aux)
        else:
            sem = self.settings.semantic
            batch = self.backend.semantic_batch(step, self.targets, joint=phase == "joint")
            loss, metrics = semantic_losses(self.backend.heads, sem, step.local, batch.h, batch.code, batch.clip,
                                            batch.aug, self.targets.text)
            if batch.rgb_mse is not None:
                loss = loss + sem.w_rgb * batch.rgb_mse
                metrics["psnr"] = -10 * math.log10(max(float(batch.rgb_mse.detach()), 1e-10))
        result = self._apply(loss, metrics)
        if phase != "reconstruct" and result.applied:
            self.backend.heads.after_step()
        if self.backend.after_step(step, self.optimizers, aux, result.applied):
            self._build_optimizers(self.backend.param_groups(self.phase))
            self.reset_step = index + 1
        return result

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, step: int) -> None:
        save_step(self.run_dir, step, {
            "model": self.backend.state_dict(), "training": self.backend.training_state(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "groups": [g.name for g in self.groups], "phase": self.phase, "reset_step": self.reset_step,
            "step": step}, stage1_end=step == self.n1 and self.n2 > 0)

    def _resume(self) -> int:
        """Load the newest good checkpoint of ``run_dir``; returns the step to continue from (0: none)."""
        latest = load_latest(self.run_dir, warn=lambda m: self.console.print(f"[yellow]warning:[/] {m}"))
        if latest is None:
            return 0
        path, state = latest
        self.backend.load_state_dict(state["model"])
        self.backend.use_settings(self.settings)
        self.backend.load_training_state(state.get("training") or {})
        step = int(state["step"])
        self.phase = state["phase"]
        self.backend.begin_phase(self.phase, step, self.targets)
        self._build_optimizers(self.backend.param_groups(self.phase))
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.reset_step = int(state["reset_step"])
        self.console.print(f"resuming from {path.name} (step {step})")
        return step

    # ------------------------------------------------------------------ the run
    def fit(self) -> LoopLog:
        """Run (or resume) both stages; writes ``model.ckpt`` and ``train_log.json`` to ``run_dir``."""
        backend, scene = self.backend, self.scene
        torch.manual_seed(self.seed)
        backend.settings = self.settings
        dim = self.features.dim if self.features is not None else None
        backend.console = self.console
        backend.setup(scene, self.settings, dim, self.seed)
        if self.features is not None:
            self.targets = FeatureTargets(self.features, scene, backend.device)
            backend.classes, backend.text = list(scene.classes), self.targets.text
        start = self._resume()
        stages = [Stage("reconstruct", 0, self.n1)] + ([Stage("semantics", self.n1, self.n1 + self.n2)]
                                                        if self.n2 else [])
        ts = self.settings.trainer
        evaluate = None
        if self.evaluate is not None and ts.eval_every:
            def evaluate(done: int) -> dict[str, float]:
                return self.evaluate(backend, done > self.n1)
        log = run_stages(stages, start, self.step, self._checkpoint, ts.checkpoint_every, evaluate=evaluate,
                         eval_every=ts.eval_every, console=self.console, max_bad_steps=ts.max_bad_steps,
                         state_ok=lambda: all_finite(backend.parameters()))
        if self.lift:  # training-free semantics, seconds after stage 1
            t0 = time.perf_counter()
            backend.lift(self.targets)
            log.stage_seconds["lift"] = time.perf_counter() - t0
        elif self.features is not None and self.n2:
            t0 = time.perf_counter()
            if backend.finish_semantics(self.targets):
                log.stage_seconds["finish_semantics"] = time.perf_counter() - t0
        offsets = None
        if self.features is not None and self.settings.semantic.calibrate:
            t0 = time.perf_counter()
            offsets = calibrate_classes(backend, scene, self.console)
            log.stage_seconds["calibration"] = time.perf_counter() - t0
        for p in backend.parameters():
            p.requires_grad_(False)
        backend.save(self.run_dir / MODEL_FILE)
        atomic_write_text(self.run_dir / LOG_FILE, json.dumps(
            {"stage_seconds": log.stage_seconds, "history": log.history, "skipped_steps": log.skipped_steps,
             "peak_memory_mb": peak_memory_mb(backend.device), **backend.summary(),
             **({"class_offsets": offsets} if offsets is not None else {}),
             "settings": self.settings.to_dict()}, indent=2))
        return log


def read_train_log(run_dir: Path) -> dict[str, Any]:
    """``RUN/train_log.json`` as a dict."""
    return json.loads((Path(run_dir) / LOG_FILE).read_text(encoding="utf-8"))
