"""The `laser` command through click's test runner."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import laser
from laser_gs.backends import registry


def run(*args):
    return CliRunner().invoke(laser, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_every_command_and_each_has_an_example():
    result = run("--help")
    assert result.exit_code == 0
    for name, cmd in laser.commands.items():
        assert name in result.output
        sub = run(name, "--help")
        assert sub.exit_code == 0, name
        assert "Example" in sub.output, f"`laser {name} --help` has no example"


def test_inspect_json_fern(fern_dir):
    result = run("inspect", fern_dir, "--json")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["format"] == "llff" and info["views"] == 20 and info["resolution"] == "504x378"
    assert info["forward_facing"] is True and info["features"] is None


def test_inspect_json_lego(lego_dir):
    info = json.loads(run("inspect", lego_dir, "--json").output)
    assert info["format"] == "blender" and info["splits"]["train"] == 100 and info["resolution"] == "200x200"


def test_inspect_table_is_human_readable(fern_dir):
    result = run("inspect", fern_dir)
    assert result.exit_code == 0 and "504x378" in result.output and "forward-facing" in result.output


def test_make_scene_output_passes_inspect(tmp_path):
    out = tmp_path / "s"
    result = run("make-scene", out, "--size", "64x48", "--views", "6", "--annotated", "2", "--dim", "16",
                 "--seed", "5")
    assert result.exit_code == 0, result.output
    info = json.loads(run("inspect", out, "--json").output)
    assert info["format"] == "3dovs" and info["views"] == 6 and info["resolution"] == "64x48"
    assert len(info["annotated_views"]) == 2 and len(info["classes"]) == 6
    assert info["features"]["valid"] and info["features"]["dim"] == 16 and info["features"]["grid"] == "4x3"
    # Refuses to overwrite a non-empty folder without --force.
    again = run("make-scene", out)
    assert again.exit_code == 2 and "--force" in again.output


def test_make_scene_bad_size(tmp_path):
    result = run("make-scene", tmp_path / "s", "--size", "big")
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output


def test_unknown_backend_lists_available(generated, tmp_path):
    result = run("train", "--backend", "nerfacto", "--scene", generated[0], "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert result.output.startswith("Error: unknown backend 'nerfacto'; available:")
    for name in registry.list_backends():
        assert name in result.output


def test_debug_flag_shows_traceback(tmp_path):
    result = CliRunner().invoke(laser, ["--debug", "inspect", str(tmp_path / "missing")])
    assert result.exit_code != 0 and isinstance(result.exception, Exception)
    assert "does not exist" in str(result.exception)


class _RecordingBackend(registry.Backend):
    """A backend that records what `laser train` passes it (tests the CLI-registry wiring)."""

    calls: list = []

    def fit(self, scene, config, run_dir, features=None, console=None):
        type(self).calls.append((scene.num_views, config, Path(run_dir)))

    def render(self, cameras, index, outputs=("rgb",), text=None):
        raise NotImplementedError

    def save(self, path):
        raise NotImplementedError

    @classmethod
    def load(cls, path, device="cpu"):
        raise NotImplementedError

    def export(self, path, prompts=None, text=None, **options):
        raise NotImplementedError


@pytest.fixture
def recording_backend():
    registry.register_backend("recording-test")(_RecordingBackend)
    _RecordingBackend.calls.clear()
    yield _RecordingBackend
    registry._REGISTRY.pop("recording-test", None)


def test_train_resolves_backend_and_saves_config(recording_backend, generated, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out, "--iters", "7")
    assert result.exit_code == 0, result.output
    (views, config, run_dir), = recording_backend.calls
    assert views == 8 and run_dir == out and config["iters"] == 7 and config["backend"] == "recording-test"
    saved = json.loads((out / "config.json").read_text())
    assert saved == config
    # A second run into the same folder needs --resume, and --resume refuses changed settings.
    again = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out)
    assert again.exit_code == 2 and "--resume" in again.output
    changed = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out, "--resume",
                  "--seed", "9")
    assert changed.exit_code == 2 and "seed" in changed.output
    ok = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out, "--resume",
             "--iters", "20")
    assert ok.exit_code == 0 and len(recording_backend.calls) == 2


def test_train_refuses_bad_precomputed_features_before_writing(recording_backend, scene_copy, tmp_path):
    import numpy as np

    np.save(scene_copy / "features" / "text_embeddings.npy", np.zeros((4, 32), np.float32))
    out = tmp_path / "run"
    result = run("train", "--backend", "recording-test", "--scene", scene_copy, "--out", out)
    assert result.exit_code == 2 and "has 4 rows but classes.txt has 6 classes" in result.output
    assert not out.exists() and not recording_backend.calls


def test_train_features_clip_without_weights(recording_backend, generated, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", tmp_path / "r",
                 "--features", "clip")
    assert result.exit_code == 2 and "CLIP weights" in result.output and "--features precomputed" in result.output
