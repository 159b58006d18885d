"""Shared fixtures: the real data beside the repository and small generated scenes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# triangulated points are cached here, not in ../shared/data (which tests only read); tests of the default
# location (the scene folder) unset it
os.environ.setdefault("LASER_CACHE_DIR", tempfile.mkdtemp(prefix="laser_cache_"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped on machines without CUDA (scripts/gpu_check.sh runs them on a GPU)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (scripts/gpu_check.sh runs these on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LASER_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(name: str) -> Path:
    """Path of a dataset in ../shared/data; CI always has it, so its absence is a failure."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.fail(f"shared dataset {path} is missing; set LASER_SHARED_DATA to the shared/data folder")
    return path


@pytest.fixture(scope="session")
def fern_dir() -> Path:
    return shared("llff_fern")


@pytest.fixture(scope="session")
def lego_dir() -> Path:
    return shared("blender_lego_200")


@pytest.fixture(scope="session")
def small_spec():
    from laser_gs.synthetic import SceneSpec

    return SceneSpec(width=96, height=72, views=8, annotated=3, seed=3, feature_dim=32)


@pytest.fixture(scope="session")
def generated(tmp_path_factory, small_spec):
    """A small generated scene on disk and its in-memory render: ``(path, GeneratedScene)``."""
    from laser_gs.synthetic import make_scene

    out = tmp_path_factory.mktemp("gen") / "scene"
    result = make_scene(out, small_spec)
    return out, result


@pytest.fixture
def scene_copy(generated, tmp_path) -> Path:
    """A private copy of the generated scene that a test may corrupt."""
    dst = tmp_path / "scene"
    shutil.copytree(generated[0], dst)
    return dst


@pytest.fixture(scope="session")
def default_scene(tmp_path_factory) -> Path:
    """The default `laser make-scene` scene (320x240, 24 views, 512-d features), written once."""
    from laser_gs.synthetic import make_scene

    out = tmp_path_factory.mktemp("default") / "scene"
    make_scene(out)
    return out


def fit(backend: str, scene_dir: Path, run_dir: Path, iters: int, features: bool = True,
        overrides: tuple[str, ...] | list[str] = (), seed: int = 0, preset: str = "fast", device: str = "cpu"):
    """Train ``backend`` on a scene folder through the library's entry point (quiet, CPU); resumes when ``run_dir``
    already holds the run. Returns ``(scene, trained backend)``."""
    from laser_gs.run import RunConfig
    from laser_gs.train import load_run_inputs, train_run
    from laser_gs.training.loop import make_console

    config = RunConfig(backend=backend, scene=str(scene_dir), features="precomputed" if features else "none",
                       preset=preset, iters=iters, overrides=list(overrides), seed=seed, device=device)
    inputs = load_run_inputs(config)
    model = train_run(config, run_dir, resume=(Path(run_dir) / "config.json").is_file(),
                      console=make_console(quiet=True), inputs=inputs)
    return inputs[0], model


OUTCOME_ITERS = {"tensorf": 600, "gsplat": 600}


@pytest.fixture(scope="session")
def outcome_runs(tmp_path_factory) -> dict[str, Path]:
    """Trained runs of both backends and the lift of each on one small generated scene (a few minutes of CPU,
    both trainings side by side): name -> run folder, each with ``eval.json``; ``"scene"`` -> the scene."""
    root = tmp_path_factory.mktemp("outcome")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    laser = [sys.executable, "-m", "laser_gs_cli.main", "--threads", "1"]
    scene = root / "scene"
    subprocess.run(laser + ["make-scene", str(scene), "--size", "160x120", "--views", "12", "--annotated", "3",
                            "--dim", "64"], check=True, env=env, capture_output=True)
    procs = {b: subprocess.Popen(laser + ["train", "--backend", b, "--scene", str(scene), "--out", str(root / b),
                                          "--iters", str(OUTCOME_ITERS[b])], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True) for b in OUTCOME_ITERS}
    for p in procs.values():
        _, err = p.communicate(timeout=1200)
        assert p.returncode == 0, err[-2000:]
    runs = {}
    for b in OUTCOME_ITERS:  # the lift from the same stage 1
        lift = root / f"{b}-lift"
        subprocess.run(laser + ["train", "--from", str(root / b), "--out", str(lift), "--set", "semantic.method=lift"],
                       check=True, env=env, capture_output=True)
        runs[b], runs[f"{b}-lift"] = root / b, lift
    for run in runs.values():
        subprocess.run(laser + ["eval", str(run), "--json", str(run / "eval.json"), "--no-timing"], check=True, env=env,
                       capture_output=True)
    runs["scene"] = scene
    return runs
