"""Text embeddings for prompts: the run's stored class embeddings, or the run's CLIP text tower."""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from laser_gs.backends.protocol import Backend
from laser_gs.errors import LaserError
from laser_gs.run import RunConfig


def parse_prompts(text: str | None) -> list[str] | None:
    """``"a, b ,c"`` -> ``["a", "b", "c"]``; empty or repeated entries are an error, None stays None."""
    if text is None:
        return None
    prompts = [" ".join(p.split()) for p in text.split(",")]
    if not prompts or any(not p for p in prompts):
        raise LaserError(f"--prompts {text!r}: give a comma-separated list of non-empty prompts, e.g. \"mug,table\"")
    seen: dict[str, str] = {}
    for p in prompts:
        if p.lower() in seen:
            raise LaserError(f"--prompts {text!r}: {p!r} is given twice (as {seen[p.lower()]!r}); each prompt gets "
                             "one class and one colour, so list it once")
        seen[p.lower()] = p
    return prompts


def _key(prompt: str) -> str:
    """How prompts are matched to the run's classes: case and spacing do not matter."""
    return " ".join(prompt.split()).lower()


def prompt_embeddings(backend: Backend, config: RunConfig, prompts: list[str] | None,
                      clip_loader: Callable[[], object] | None = None) -> tuple[list[str], Tensor]:
    """``(prompts, [C, D] embeddings)`` for ``prompts`` (default: the run's classes).

    The run's own class embeddings are used when the prompts are its classes
    (in any order or subset); other prompts are encoded with the run's CLIP,
    which needs its weights (a clear error otherwise).
    """
    if backend.text is None:
        raise LaserError("this run has no semantic field (trained with --features none); retrain with features")
    if prompts is None:
        if not backend.classes:
            raise LaserError("this run stores no class names; pass --prompts")
        return list(backend.classes), backend.text
    known = {_key(c): i for i, c in enumerate(backend.classes)}
    if all(_key(p) in known for p in prompts):
        return [backend.classes[known[_key(p)]] for p in prompts], backend.text[[known[_key(p)] for p in prompts]]
    classes = ", ".join(backend.classes)
    if clip_loader is None:
        from laser_gs.features.dense_clip import load_clip

        clip_loader = lambda: load_clip(config.clip_mode or "naclip", weights=config.clip_weights,  # noqa: E731
                                        alternative=f"Or use the run's classes, which need no CLIP: {classes}.")
    try:
        clip = clip_loader()
    except LaserError as exc:
        unknown = [p for p in prompts if _key(p) not in known]
        raise LaserError(f"prompts {unknown} are not among the run's classes ({classes}), so CLIP's text tower is "
                         f"needed to encode them: {exc}") from None
    text = clip.encode_text(prompts).to(backend.text.device)
    if text.shape[1] != backend.text.shape[1]:
        raise LaserError(f"CLIP text width {text.shape[1]} differs from the run's feature width "
                         f"{backend.text.shape[1]}; use the CLIP the features were extracted with")
    return prompts, text


def optional_prompt_embeddings(backend: Backend, config: RunConfig, prompts: list[str] | None
                               ) -> tuple[list[str] | None, Tensor | None]:
    """For commands that also work without semantics (export, render): ``(None, None)`` for a run trained
    without features when no prompts are asked for, else :func:`prompt_embeddings`."""
    if backend.text is None and prompts is None:
        return None, None
    return prompt_embeddings(backend, config, prompts)
