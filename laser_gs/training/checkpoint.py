"""Checkpoints: atomic, versioned, checksummed, and loaded without pickle execution.

File layout::

    b"LASERCKPT\n"  b"<format>\n"  b"<sha256 of payload, hex>\n"  payload

where the payload is ``torch.save`` of a dict holding only tensors, numbers,
strings, lists and dicts. It is read back with ``torch.load(weights_only=True)``,
so a checkpoint a user was sent cannot run code. A truncated or altered file
fails the checksum and is reported, never half-loaded; :func:`load_latest`
then falls back to the previous good checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from laser_gs.atomic import atomic_open
from laser_gs.errors import LaserError

MAGIC = b"LASERCKPT\n"
FORMAT_VERSION = 1
CKPT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8})\.ckpt$")


class CheckpointError(LaserError):
    """A checkpoint that cannot be trusted or read."""


#: What to do about a damaged file (a run's model.ckpt or one of its checkpoints).
DAMAGED_NEXT_STEP = ("delete it and run the same `laser train ... --resume` again (it continues from the newest "
                     "good checkpoint, or retrains from the start)")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temp file + fsync + rename) with a checksum."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode()
    with atomic_open(path, "wb") as fh:
        fh.write(MAGIC + str(FORMAT_VERSION).encode() + b"\n" + digest + b"\n")
        fh.write(data)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and verify a checkpoint; :class:`CheckpointError` says what is wrong with it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from None
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a laser_gs checkpoint (bad header); {DAMAGED_NEXT_STEP}")
    rest = raw[len(MAGIC):]
    try:
        version_line, digest, data = rest.split(b"\n", 2)
        version = int(version_line)
    except ValueError:
        raise CheckpointError(f"{path}: truncated checkpoint header; {DAMAGED_NEXT_STEP}") from None
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}, this laser_gs reads format {FORMAT_VERSION}; "
                              "retrain with this version")
    if hashlib.sha256(data).hexdigest().encode() != digest:
        raise CheckpointError(f"{path}: checksum mismatch, the file is truncated or corrupted; {DAMAGED_NEXT_STEP}")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # objects beyond tensors and plain values: never unpickled (it can run code)
        raise CheckpointError(f"{path}: cannot decode checkpoint: not a laser_gs checkpoint (it holds objects other "
                              "than tensors and plain values, which laser_gs never loads: unpickling them could run "
                              f"code); {DAMAGED_NEXT_STEP}") from None
    except Exception as exc:  # noqa: BLE001 - any other decoding failure means an unusable file
        first = (str(exc).strip().splitlines() or [""])[0][:200]  # not torch's multi-line advice
        raise CheckpointError(f"{path}: cannot decode checkpoint ({type(exc).__name__}: {first}); "
                              f"{DAMAGED_NEXT_STEP}") from None


def step_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CKPT_DIR / f"step_{step:08d}.ckpt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CKPT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest(run_dir: Path, map_location: str | torch.device = "cpu",
                warn: Any = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that verifies, or None when the run has none.

    Corrupted ones are skipped (reported through ``warn(message)``); if every
    checkpoint is corrupted a :class:`CheckpointError` lists them.
    """
    candidates = list_checkpoints(run_dir)
    errors = []
    for path in reversed(candidates):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as exc:
            errors.append(str(exc))
            if warn is not None:
                warn(f"skipping {exc}")
    if errors:
        raise CheckpointError("no usable checkpoint: " + "; ".join(errors))
    return None


STAGE1_FILE = "reconstruct_end.ckpt"


def save_step(run_dir: Path, step: int, payload: dict[str, Any], keep: int = 2, stage1_end: bool = False) -> Path:
    """Save the checkpoint of ``step`` and delete all but the newest ``keep``.

    ``stage1_end`` also keeps a copy as ``checkpoints/reconstruct_end.ckpt`` (never pruned), from
    which ablations and sweeps start stage 2 without refitting the reconstruction.
    """
    path = step_path(run_dir, step)
    save_checkpoint(path, payload)
    if stage1_end:
        save_checkpoint(Path(run_dir) / CKPT_DIR / STAGE1_FILE, payload)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path
