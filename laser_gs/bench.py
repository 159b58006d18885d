"""Render-speed benchmark of trained runs (``laser bench``), backend-agnostic through the registry."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch

from laser_gs.data.cameras import Cameras
from laser_gs.evaluation import DEFAULT_HEAD, evaluate_run, label_map_outputs
from laser_gs.memory import peak_memory_mb
from laser_gs.run import open_run


def scaled_cameras(cameras: Cameras, views: list[int], size: tuple[int, int] | None) -> Cameras:
    """The given views, with intrinsics rescaled to ``size = (W, H)`` (None: unchanged)."""
    sub = cameras[views]
    return sub if size is None else sub.resized(*size)


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak on GPU, peak RSS (Linux VmHWM, reset first) on CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak_mb = peak_memory_mb(self.device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_frames(backend, cameras: Cameras, outputs: tuple[str, ...], text, device: torch.device,
                frames: int) -> float:
    """Mean seconds per frame over ``frames`` renders (cycling the cameras) after one warm-up frame."""
    backend.render(cameras, 0, outputs, text)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(frames):
        backend.render(cameras, i % len(cameras), outputs, text)
    _sync(device)
    return (time.perf_counter() - t0) / frames


def bench_run(run_dir: Path, size: tuple[int, int] | None = None, frames: int = 3, device: str = "auto",
              scores: bool = True) -> dict[str, Any]:
    """Speed (and, where the scene has GT, mIoU / accuracy) of one run."""
    config, backend, scene = open_run(run_dir, device)
    dev = backend.device
    views = scene.annotated_views or scene.splits.get("test") or [0]
    cams = scaled_cameras(scene.cameras, views, size)
    text = backend.text
    seg = ("rgb",) + label_map_outputs(DEFAULT_HEAD) if text is not None else None  # RGB + label map
    result: dict[str, Any] = {"run": str(run_dir), "backend": config.backend, "device": str(dev),
                              "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
                              else platform.processor() or platform.machine(),
                              "resolution": [cams.width, cams.height], "frames": frames}
    with torch.no_grad():
        with PeakMemory(dev) as mem_rgb:
            s = time_frames(backend, cams, ("rgb",), None, dev, frames)
        result.update(ms_rgb=1000 * s, fps_rgb=1 / s, peak_mb_rgb=mem_rgb.peak_mb)
        if seg:
            with PeakMemory(dev) as mem_seg:
                s = time_frames(backend, cams, seg, text, dev, frames)
            result.update(ms_segmentation=1000 * s, fps_segmentation=1 / s, peak_mb_segmentation=mem_seg.peak_mb)
        if scores and seg and scene.annotated_views:
            ev = evaluate_run(backend, scene, None, text, timing=False)
            result.update(miou=ev["miou"], accuracy=ev["accuracy"], head=ev["head"])
    return result


def add_speedups(results: list[dict[str, Any]]) -> None:
    """Each run's speed-up over the first one (``speedup_rgb_vs_first``, ``speedup_segmentation_vs_first``)."""
    if len(results) < 2:
        return
    base = results[0]
    for r in results:
        if "ms_segmentation" in r and "ms_segmentation" in base:
            r["speedup_segmentation_vs_first"] = base["ms_segmentation"] / r["ms_segmentation"]
        r["speedup_rgb_vs_first"] = base["ms_rgb"] / r["ms_rgb"]
