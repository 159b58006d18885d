"""The iteration loop every backend trains with: progress, checkpoints, Ctrl-C and NaN guards.

A backend describes training as a list of :class:`Stage` objects over one
global step counter and supplies ``step(it) -> StepResult`` and
``checkpoint(it)``. The loop owns everything that is the same for all
backends: the rich progress bar (ETA, loss terms, PSNR), checkpoints at
intervals and at the end, a checkpoint and a clean exit on Ctrl-C, and
skipping of non-finite steps (stopping after too many in a row).
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from laser_gs.errors import LaserError
from laser_gs.progress import stderr_console


class TrainingInterrupted(LaserError):
    """Ctrl-C during training; a checkpoint was written first."""

    exit_code = 130


class TrainingDiverged(LaserError):
    """Too many consecutive non-finite steps."""


@dataclass
class Stage:
    """A named range of global steps ``[start, end)``."""

    name: str
    start: int
    end: int

    @property
    def iters(self) -> int:
        return self.end - self.start


@dataclass
class StepResult:
    """What one step reports: scalar losses (shown in the bar) and whether it was applied."""

    losses: dict[str, float] = field(default_factory=dict)
    applied: bool = True


@dataclass
class LoopLog:
    """Per-stage wall time and a sparse loss history (what benchmarks and plots read)."""

    stage_seconds: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    skipped_steps: int = 0


make_console = stderr_console


@contextmanager
def _deferred_sigint():
    """Turn Ctrl-C into a flag checked between steps, so a step is never cut in half."""
    flag = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):  # noqa: ARG001
        if flag["hit"]:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        flag["hit"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _fmt(losses: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in losses.items())


def run_stages(stages: list[Stage], start_step: int, step: Callable[[int], StepResult],
               checkpoint: Callable[[int], None], checkpoint_every: int,
               evaluate: Callable[[int], dict[str, float]] | None = None, eval_every: int = 0,
               console: Console | None = None, max_bad_steps: int = 20,
               on_stage_start: Callable[[Stage, int], None] | None = None, log: LoopLog | None = None,
               state_ok: Callable[[], bool] | None = None) -> LoopLog:
    """Run ``step`` for every global step from ``start_step`` to the end of the last stage.

    ``checkpoint(it)`` saves the state *after* ``it`` steps (so a resume starts
    at ``it``). ``on_stage_start(stage, it)`` runs when a stage begins or is
    resumed (to set up optimizers and freezing). ``evaluate(it)`` adds
    metrics such as PSNR to the progress line every ``eval_every`` steps.

    A step that reports ``applied=False`` (non-finite loss or gradient) changed
    nothing and is logged; ``max_bad_steps`` of them in a row stop training with
    :class:`TrainingDiverged`. The state is then checkpointed only if
    ``state_ok()`` (e.g. all parameters finite) says it is good; otherwise the
    last periodic checkpoint is the one to resume from.
    """
    console = console or make_console()
    log = log or LoopLog()
    bad_in_row = 0
    last_losses: dict[str, float] = {}
    extra: dict[str, float] = {}
    with _deferred_sigint() as sigint, Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                                MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                                                TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                                console=console, transient=False) as bar:
        for stage in stages:
            if start_step >= stage.end:
                continue
            first = max(start_step, stage.start)
            task = bar.add_task(stage.name, total=stage.iters, completed=first - stage.start, info="")
            if on_stage_start is not None:
                on_stage_start(stage, first)
            t0 = time.perf_counter()
            it = first
            try:
                for it in range(first, stage.end):
                    result = step(it)
                    if result.applied:
                        bad_in_row = 0
                        last_losses = result.losses
                    else:
                        bad_in_row += 1
                        log.skipped_steps += 1
                        console.log(f"step {it}: non-finite loss or gradient, step skipped")
                        if bad_in_row >= max_bad_steps:
                            good = state_ok is None or state_ok()
                            if good:
                                checkpoint(it)
                            raise TrainingDiverged(
                                f"training diverged: {bad_in_row} non-finite steps in a row at step {it}; "
                                + ("the current state is finite and checkpointed" if good else
                                   "the parameters are no longer finite, so the last periodic checkpoint is kept")
                                + ". Lower the learning rates or check the input features for extreme values")
                    done = it + 1
                    evaluated: dict[str, float] = {}
                    if evaluate is not None and eval_every and (done % eval_every == 0 or done == stage.end):
                        bar.update(task, completed=done - stage.start, info="evaluating ...")
                        bar.refresh()
                        extra = evaluated = evaluate(done)
                    if done % 25 == 0 or done == stage.end or evaluated:
                        # evaluation metrics only where they were measured (the bar keeps showing the last ones)
                        log.history.append({"step": done, "time": time.perf_counter() - t0, **last_losses,
                                            **evaluated})
                    bar.update(task, completed=done - stage.start, info=_fmt({**last_losses, **extra}))
                    if not console.is_terminal and (done - stage.start) % max(1, stage.iters // 10) == 0:
                        # no live bar in logs and CI: a line every 10% instead
                        elapsed = time.perf_counter() - t0
                        eta = elapsed / max(1, done - first) * (stage.end - done)
                        console.log(f"{stage.name} {done - stage.start}/{stage.iters} "
                                    f"elapsed {elapsed:.0f}s eta {eta:.0f}s {_fmt({**last_losses, **extra})}")
                    if sigint["hit"]:
                        checkpoint(done)
                        raise TrainingInterrupted(f"interrupted after step {done}; checkpoint saved, "
                                                  "continue with the same command and --resume")
                    if checkpoint_every and done % checkpoint_every == 0 and done != stage.end:
                        checkpoint(done)
            except KeyboardInterrupt:
                raise TrainingInterrupted(f"interrupted during step {it}; continue from the last checkpoint "
                                          "with the same command and --resume") from None
            log.stage_seconds[stage.name] = log.stage_seconds.get(stage.name, 0.0) + time.perf_counter() - t0
            checkpoint(stage.end)
    return log


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """True when every tensor holds only finite values (the ``state_ok`` check of :func:`run_stages`)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors)
