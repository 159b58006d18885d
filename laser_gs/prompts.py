"""Text embeddings for prompts: the run's stored class embeddings, or the run's CLIP text tower."""

from __future__ import annotations

from pathlib import Path
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


def prompt_key(prompt: str) -> str:
    """How prompts are matched to the run's classes: case and spacing do not matter."""
    return " ".join(prompt.split()).lower()


def prompt_embeddings(backend: Backend, config: RunConfig, prompts: list[str] | None,
                      clip_loader: Callable[[], object] | None = None,
                      clip_weights: str | Path | None = None) -> tuple[list[str], Tensor]:
    """``(prompts, [C, D] embeddings)`` for ``prompts`` (default: the run's classes).

    The run's own class embeddings are used when the prompts are its classes
    (in any order or subset); other prompts are encoded with the run's CLIP
    (``clip_weights``, else the weights the run was trained with), which needs
    its weights (a clear error otherwise). A run whose features came without
    class text (e.g. extracted for a scene without ``classes.txt``) has no
    classes: every prompt goes through CLIP.
    """
    if backend.heads is None:
        raise LaserError("this run has no semantic field (trained with --features none); retrain with features")
    if prompts is None:
        if not backend.classes:
            raise LaserError("this run stores no class names; pass --prompts")
        return list(backend.classes), backend.text
    known = {prompt_key(c): i for i, c in enumerate(backend.classes)}
    if backend.text is not None and all(prompt_key(p) in known for p in prompts):
        rows = [known[prompt_key(p)] for p in prompts]
        return [backend.classes[i] for i in rows], backend.text[rows]
    classes = ", ".join(backend.classes)
    if clip_loader is None:
        from laser_gs.features.dense_clip import load_clip

        alternative = (f"Or use the run's classes, which need no CLIP: {classes}." if classes else
                       "This run has no class names of its own, so every prompt needs CLIP's text tower: "
                       "pass --clip-weights with the weights its features were extracted with.")
        clip_loader = lambda: load_clip(config.clip_mode or "naclip",  # noqa: E731
                                        weights=clip_weights or config.clip_weights, alternative=alternative)
    try:
        clip = clip_loader()
    except LaserError as exc:
        unknown = [p for p in prompts if prompt_key(p) not in known]
        where = f"not among the run's classes ({classes})" if classes else "to be encoded (the run has no classes)"
        raise LaserError(f"prompts {unknown} are {where}, so CLIP's text tower is needed to encode them: "
                         f"{exc}") from None
    text = clip.encode_text(prompts).to(backend.device)
    if text.shape[1] != backend.heads.dim:
        raise LaserError(f"CLIP text width {text.shape[1]} differs from the run's feature width "
                         f"{backend.heads.dim}; use the CLIP the features were extracted with")
    return prompts, text


def optional_prompt_embeddings(backend: Backend, config: RunConfig, prompts: list[str] | None
                               ) -> tuple[list[str] | None, Tensor | None]:
    """For commands that also work without semantics (export, render): ``(None, None)`` for a run trained
    without features when no prompts are asked for, else :func:`prompt_embeddings`."""
    if (backend.heads is None or backend.text is None) and prompts is None:
        return None, None
    return prompt_embeddings(backend, config, prompts)
