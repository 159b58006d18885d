"""Paths taken from scene files must stay inside the scene folder."""

from __future__ import annotations

from pathlib import Path

from laser_gs.errors import SceneError


def resolve_inside(root: Path, relative: str, source: Path | None = None) -> Path:
    """Join ``relative`` to ``root`` and refuse results outside ``root``.

    A ``file_path`` of ``../../etc/passwd`` in a ``transforms.json`` (or an
    absolute path, or a symlink pointing out) must not make us read files the
    user did not hand us.

    Args:
        root: the scene folder.
        relative: a path read from a scene file.
        source: the file it was read from, named in the error.
    """
    root_resolved = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise SceneError(f"path {relative!r} points outside the scene folder {root}", source or root,
                         "scene files may only reference files inside the scene folder")
    return candidate
