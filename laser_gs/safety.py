"""What a command may write: never its own inputs, never what it did not create.

Rules (README "Safety"):

* An output folder that exists and is not empty is replaced only with ``--force``, and only when it carries
  the marker file of the command that made it (:data:`MARKER`); anything else is the user's and stays.
* An output never is, or contains, one of the command's inputs, ``--force`` or not.
* An existing output file is overwritten only with ``--force``, and only when it has the format the command
  writes (``expect_magic``): a run's ``config.json`` or checkpoint is never a PLY, so ``laser export
  --ply RUN/model.ckpt --force`` is refused.
* Names that come from a plan (``laser batch``) are plain names, resolved inside ``--out``.

Every refusal is a :class:`~laser_gs.errors.LaserError` (one line, exit code 2) that says what was refused
and what to do instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

from laser_gs.errors import LaserError

MARKER = ".laser_gs_output.json"
"""File that marks a folder as made by a laser command: ``{"command": "process"}``."""

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class UnsafeOutputError(LaserError):
    """Writing there would delete or overwrite data the command did not create."""


def resolved(path: str | Path) -> Path:
    """``path`` made absolute with links and ``..`` resolved (what it really names on disk)."""
    return Path(path).expanduser().resolve()


def is_within(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (after resolving both)."""
    p, f = resolved(path), resolved(folder)
    return p == f or f in p.parents


def refuse_overlap(out: str | Path, inputs: Iterable[str | Path], what: str = "OUT") -> None:
    """Refuse an output that is one of ``inputs`` or a folder containing one."""
    for item in inputs:
        if item is not None and is_within(item, out):
            raise UnsafeOutputError(f"{what} {out} is or contains the input {item}; writing there could delete "
                                    "it: choose an output folder outside the input")


def made_by(folder: str | Path) -> str | None:
    """The command that made ``folder`` (from its marker), or None."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data.get("command") if isinstance(data, dict) else None


def mark_output(folder: str | Path, command: str) -> None:
    """Mark ``folder`` as made by ``command`` (so that its ``--force`` may replace it later)."""
    (Path(folder) / MARKER).write_text(json.dumps({"command": command}) + "\n")


def prepare_output_dir(out: str | Path, inputs: Iterable[str | Path], command: str, force: bool,
                       what: str = "OUT") -> bool:
    """Check that ``command`` may write the folder ``out``; returns whether an existing one is to be replaced.

    The caller replaces it only after its work succeeded (write beside it, then swap).
    """
    out = Path(out)
    refuse_overlap(out, inputs, what)
    if out.exists() and not out.is_dir():
        raise UnsafeOutputError(f"{what} {out} is a file, not a folder; choose another {what}")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not force:
        raise UnsafeOutputError(f"{what} {out} exists and is not empty; pass --force to replace it (only an "
                                f"earlier output of `laser {command}`) or choose another {what}")
    maker = made_by(out)
    if maker != command:
        who = f"`laser {maker}`" if maker else "someone else"
        raise UnsafeOutputError(f"{what} {out} was not made by `laser {command}` (made by {who}: no {MARKER} "
                                f"of it), so --force will not delete it: choose another {what} or remove it yourself")
    return True


def check_output_file(path: str | Path, force: bool, expect_magic: bytes, what: str = "output",
                      inputs: Iterable[str | Path] = ()) -> None:
    """Check that a file may be written at ``path``: new, or (with ``force``) an earlier file of this format.

    ``expect_magic``: the first bytes of every file this command writes (``b"ply"``).
    """
    path = Path(path)
    for item in inputs:
        if item is not None and is_within(item, path):
            raise UnsafeOutputError(f"{what} {path} is the input {item}; choose another file name")
    if path.is_dir():
        raise UnsafeOutputError(f"{what} {path} is a folder; give a file name")
    if not path.exists():
        return
    if not force:
        raise UnsafeOutputError(f"{what} {path} exists; pass --force to overwrite it or choose another file name")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(expect_magic))
    except OSError as exc:
        raise UnsafeOutputError(f"{what} {path}: cannot read it to check what it is ({exc.strerror})") from None
    if head != expect_magic:
        raise UnsafeOutputError(f"{what} {path} exists and is not a file this command writes (it does not start "
                                f"with {expect_magic.decode(errors='replace')!r}), so --force will not overwrite "
                                "it: choose another file name")


def plain_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``.``, ``_``, ``-``; no path), else an error."""
    if not isinstance(name, str) or not _PLAIN_NAME.match(name) or name in (".", ".."):
        raise UnsafeOutputError(f"{what} {name!r} is not a plain name: use letters, digits, '.', '_' and '-' "
                                "only (no '/' or '..'); outputs are always made inside --out")
    return name


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
