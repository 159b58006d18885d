"""Atomic file writes: a temp file in the target folder, fsync, then rename.

A crash or a full disk leaves either the old file or the new one, never a
half-written file under the real name. The file gets the mode ``open()`` would give
it (0666 minus the umask), not the temp file's private 0600.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from laser_gs.errors import LaserError


class DiskFullError(LaserError):
    """A write failed because the device is full (or over quota)."""


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"{path}: no space left on the device while writing it; free some space or "
                                "write to another folder, then run the command again (any previous version "
                                "of the file is unchanged)") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def check_writable(path: str | Path, what: str = "output") -> None:
    """Fail early, before any heavy work, when ``path`` (a file or folder to be written) cannot be written.

    Probes the folder itself when it exists, else its nearest existing parent, with a temporary file, and
    creates nothing. Raises :class:`LaserError` naming ``what`` (e.g. ``--out``) and the folder.
    """
    path = Path(path).absolute()
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise LaserError(f"{what} {path}: {probe} is a file, not a folder; choose another location")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"{what} {path}: no space left on the device of {probe}; free some space or "
                                "choose another location") from None
        raise LaserError(f"{what} {path}: cannot write in {probe} ({exc.strerror}); choose another location or "
                         "fix its permissions") from None
