"""User-facing error types.

Every problem a user can fix (a bad scene folder, an unknown backend, missing
weights) raises a subclass of :class:`LaserError`. The CLI turns these into a
one-line ``Error: ...`` message and exit code 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class LaserError(Exception):
    """An error the user can fix; the message says what, where and how."""

    exit_code = 2


class SceneError(LaserError):
    """A scene folder or one of its files is missing or malformed."""

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None):
        parts = []
        if path is not None:
            parts.append(f"{path}: ")
        parts.append(message)
        if hint:
            parts.append(f" ({hint})")
        super().__init__("".join(parts))
        self.path = Path(path) if path is not None else None


class FeatureError(LaserError):
    """A precomputed feature directory is missing or malformed."""


class BackendError(LaserError):
    """Unknown backend name or a backend that cannot run here."""


class WeightsError(LaserError):
    """Model weights (CLIP) are missing or unreadable."""
