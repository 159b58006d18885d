"""Helpers the benchmark scripts share: run the CLI, describe the machine, append to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def machine() -> str:
    """One line: CPU model and cores (and GPU when CUDA is there)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def laser(*args: str, quiet: bool = True) -> float:
    """Run ``laser ARGS`` in a subprocess; returns wall seconds (raises on failure)."""
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "laser_gs_cli.main", *args], cwd=REPO, env=env,
                         stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"laser {' '.join(args)} failed ({out.returncode}):\n{out.stdout}")
    return time.perf_counter() - t0


def append_doc(title: str, command: str, table: str, quick: bool) -> None:
    """Append a dated section to docs/benchmarks.md (never for --quick runs, which are smoke tests)."""
    if quick:
        return
    stamp = _dt.date.today().isoformat()
    with DOC.open("a", encoding="utf-8") as fh:
        fh.write(f"\n### {title} ({stamp})\n\nMachine: {machine()}. Command: `{command}`.\n\n{table}\n")


def write_json(path: Path | None, data: dict) -> None:
    if path is not None:
        Path(path).write_text(json.dumps(data, indent=2))


def parse_common(doc: str, default_out: str, argv: list[str] | None = None,
                 figures: bool = False, sweeps: bool = False) -> argparse.Namespace:
    """Arguments every backend benchmark takes: --scene --backends --preset --out --json --quick."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, default=None, help="scene folder (default: generate a synthetic one)")
    ap.add_argument("--backends", nargs="+", default=["tensorf", "gsplat"])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--out", type=Path, default=Path(default_out))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="CI-sized smoke run (tiny scene, few iterations)")
    if sweeps:
        ap.add_argument("--sweeps", action="store_true", help="also sweep alpha, beta, gamma (Tables 5, 6, 8)")
        ap.add_argument("--sweeps-only", action="store_true", help="only the sweeps (implies --sweeps)")
    if figures:
        ap.add_argument("--figures", type=Path, default=None, help="folder for PNG figures (default: OUT/figures)")
    args = ap.parse_args(argv)
    if sweeps and args.sweeps_only:
        args.sweeps = True
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def ensure_scene(args: argparse.Namespace, text_aug: bool = False) -> Path:
    """``--scene``, or a synthetic scene generated once under ``--out`` (tiny with ``--quick``); ``text_aug``
    writes augmented-prompt embeddings (the 'sharper' model) so text augmentation can be measured."""
    if args.scene is not None:
        return args.scene
    scene = args.out / "scene"
    if not (scene / "scene.json").is_file():
        extra = ["--size", "64x48", "--views", "6", "--annotated", "2", "--dim", "32"] if args.quick else []
        laser("make-scene", str(scene), *extra, *(["--text-aug-model", "sharper"] if text_aug else []))
    return scene
