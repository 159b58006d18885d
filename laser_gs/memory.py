"""A process-wide memory cap for rendering and evaluation (``--max-memory-gb``).

Renderers work in chunks (rays for fields, tile blocks for Gaussians). Each
asks :func:`fit_chunk` how many items it may process at once given its own
estimate of the bytes one item needs; without a cap the renderer's default
chunk is used. The cap bounds the chunked working set, not the tensors that
are the result (an ``[H, W, D]`` feature image is as large as it is).
"""

from __future__ import annotations

from laser_gs.errors import LaserError

_limit_bytes: int | None = None


def set_memory_limit(gigabytes: float | None) -> None:
    """Cap chunked work at ``gigabytes`` (None: no cap)."""
    global _limit_bytes
    if gigabytes is not None and gigabytes <= 0:
        raise LaserError(f"--max-memory-gb must be positive, got {gigabytes}")
    _limit_bytes = None if gigabytes is None else int(gigabytes * 2 ** 30)


def fit_chunk(default: int, bytes_per_item: int, minimum: int = 1) -> int:
    """``default`` items, or fewer so that ``items * bytes_per_item`` stays within half the cap.

    Half, because a chunk's inputs and autograd-free temporaries coexist with the
    accumulated results. Never below ``minimum`` (work must progress).
    """
    if _limit_bytes is None:
        return default
    return max(minimum, min(default, (_limit_bytes // 2) // max(1, bytes_per_item)))


def peak_memory_mb(device) -> float:
    """Peak memory of this process so far: the CUDA allocator's peak on GPU, peak RSS (VmHWM) on CPU."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        from pathlib import Path

        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
