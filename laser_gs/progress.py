"""Progress for phases of known length (lifting, evaluation, scene generation, export): nothing long is silent.

:func:`progress` shows a rich bar with count, elapsed time and ETA on a terminal, and a
line at the start, every 10 % and the end otherwise (logs, CI), so no phase runs longer
than a few seconds without a sign of life.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


def stderr_console(quiet: bool = False) -> Console:
    """The console progress and notes go to (stderr, so stdout stays for results)."""
    return Console(stderr=True, quiet=quiet)


@contextmanager
def progress(description: str, total: int, console: Console | None = None,
             unit: str = "") -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, info=None)`` for a phase of ``total`` items (``info``: a short text shown after the
    bar, e.g. a rate or counts); the bar disappears when the phase ends and one line with its duration stays.
    The one progress display of the package: every command and phase with a known length uses it."""
    console = console or stderr_console()
    t0 = time.perf_counter()
    if console.is_terminal:
        columns = (TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description, total=total, info="")

            def advance_bar(n: int = 1, info: str | None = None) -> None:
                bar.update(task, advance=n, **({"info": info} if info is not None else {}))

            yield advance_bar
    else:
        state = {"done": 0, "next": 0.1}
        console.log(f"{description}: 0/{total}{unit}")

        def advance(n: int = 1, info: str | None = None) -> None:
            state["done"] += n
            if total and state["done"] / total >= state["next"] and state["done"] < total:
                while state["next"] <= state["done"] / total:
                    state["next"] += 0.1
                elapsed = time.perf_counter() - t0
                eta = elapsed / state["done"] * (total - state["done"])
                console.log(f"{description}: {state['done']}/{total}{unit}, {elapsed:.0f}s elapsed, ETA {eta:.0f}s"
                            + (f", {info}" if info else ""))

        yield advance
    if not console.quiet:
        console.log(f"{description}: {total}{unit} done in {time.perf_counter() - t0:.1f}s")


@contextmanager
def phase(console: Console, name: str) -> Iterator[None]:
    """A spinner with the elapsed time, for a step that runs in one call without progress of its own (pycolmap's
    C++ stages); on a terminal it disappears at the end, and one line with the step's duration stays."""
    t0 = time.perf_counter()
    if console.is_terminal:
        columns = (SpinnerColumn(), TextColumn(f"[bold]{name}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            bar.add_task(name, total=None)
            yield
    else:
        console.log(f"{name} ...")
        yield
    if not console.quiet:
        console.log(f"{name}: done in {time.perf_counter() - t0:.1f}s")
