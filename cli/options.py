"""Option groups shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click


def scene_load_options(func: Callable) -> Callable:
    """``--downscale``, ``--holdout`` and ``--background``: how a scene folder is read."""
    func = click.option("--background", type=click.Choice(["white", "black"]), default="white", show_default=True,
                        help="Background that Blender RGBA images are composited on.")(func)
    func = click.option("--holdout", type=click.IntRange(min=0), default=None,
                        help="Every k-th view is held out for testing (LLFF default 8; 0 for 3D-OVS scenes, "
                             "whose protocol evaluates on annotated training views).")(func)
    func = click.option("--downscale", type=click.IntRange(min=1), default=None,
                        help="Image downscale factor; LLFF reads images_N/ when present. "
                             "Default: the least-downscaled images present.")(func)
    return func


def parse_size(value: str, option: str = "--size") -> tuple[int, int]:
    """``"320x240"`` -> ``(320, 240)``; errors name ``option``."""
    try:
        w, h = (int(x) for x in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 320x240, got {value!r}", param_hint=option) from None
    if w < 16 or h < 16:
        raise click.BadParameter(f"size must be at least 16x16, got {value!r}", param_hint=option)
    return w, h


def render_options(func: Callable) -> Callable:
    """``--device`` and ``--max-memory-gb`` for commands that render a trained run."""
    func = click.option("--max-memory-gb", type=click.FloatRange(min=0, min_open=True), default=None,
                        help="Cap the memory of chunked rendering (rays / tile blocks per chunk); default: "
                             "the renderers' own chunk sizes.")(func)
    func = click.option("--device", default="auto", show_default=True, help="'auto', 'cpu' or 'cuda'.")(func)
    return func


def clip_weights_option(func: Callable) -> Callable:
    """``--clip-weights`` for commands that may encode new prompts with CLIP's text tower."""
    return click.option("--clip-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="CLIP weights for prompts that are not among the run's classes (default: the "
                             "weights the run was trained with, or the Hugging Face cache).")(func)


def with_clip_weights(config, clip_weights: Path | None):
    """The run's config with ``--clip-weights`` in place of the stored weights path (when given)."""
    import dataclasses

    return config if clip_weights is None else dataclasses.replace(config, clip_weights=str(clip_weights))


def table_console():
    """A console for result tables: the terminal's width, or 160 columns when writing to a file or pipe (rich's
    default of 80 would wrap wide tables' headers and cells in logs)."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=max(out.width, 160))
