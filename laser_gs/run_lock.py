"""One writer per run folder: an advisory lock held by train, resume and export into the run.

The lock is ``fcntl.flock`` on ``RUN/.laser_gs.lock``: the kernel drops it when its process ends, however it
ends, so a killed run never leaves a stale lock behind (the file stays, holding the last holder's PID for the
message, and is reused). Holding it is cheap; a second writer gets a one-line error naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from laser_gs.errors import LaserError

LOCK_FILE = ".laser_gs.lock"


class RunLockedError(LaserError):
    """Another process is writing this run folder."""


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
        return f"PID {info['pid']} (`laser {info['command']}`, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def run_lock(run_dir: str | Path, command: str) -> Iterator[None]:
    """Hold the run folder's lock for ``command`` (creates the folder); fails at once when another holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"{run_dir} is in use by {_holder(fd)}; wait for it to finish or stop it, then run "
                                 "this again") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
