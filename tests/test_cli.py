"""The `laser` command through click's test runner."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from laser_gs.training.semantic import SemanticSettings
from laser_gs.training.settings import Preset, ReconstructionSettings, TrainerSettings, TrainingSettings
from laser_gs_cli.main import laser
from laser_gs.backends import registry


def run(*args):
    return CliRunner().invoke(laser, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_every_command_and_each_has_an_example():
    result = run("--help")
    assert result.exit_code == 0
    for name in laser.commands:
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
    """A backend whose training the test records instead of running (tests the CLI-registry-trainer wiring)."""

    presets = {"fast": lambda: Preset(ReconstructionSettings(iters=60), SemanticSettings(iters=40), TrainerSettings())}
    calls: list = []
    setup = parameters = param_groups = reconstruction_loss = semantic_batch = render_outputs = points = \
        model_state = load_model_state = None


@pytest.fixture
def recording_backend(monkeypatch):
    from laser_gs.training.trainer import Trainer

    registry.register_backend("recording-test")(_RecordingBackend)
    _RecordingBackend.calls.clear()
    monkeypatch.setattr(Trainer, "fit", lambda self: _RecordingBackend.calls.append(
        (self.scene.num_views, self.settings, self.run_dir, type(self.backend))))
    yield _RecordingBackend
    registry._REGISTRY.pop("recording-test", None)


def test_train_resolves_backend_and_saves_config(recording_backend, generated, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out, "--iters", "7",
                 "--set", "semantic.beta=0.5")
    assert result.exit_code == 0, result.output
    (views, settings, run_dir, cls), = recording_backend.calls
    assert views == 8 and run_dir == out and cls is _RecordingBackend
    assert settings.model.iters + settings.semantic.iters == 7 and settings.semantic.beta == 0.5
    saved = json.loads((out / "config.json").read_text())
    assert saved["backend"] == "recording-test" and saved["iters"] == 7 and saved["overrides"] == ["semantic.beta=0.5"]
    assert saved["settings"] == settings.to_dict()
    assert TrainingSettings.from_dict(_RecordingBackend, saved["settings"]) == settings  # exact round trip
    # A second run into the same folder needs --resume, and --resume refuses changed settings.
    again = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out)
    assert again.exit_code == 2 and "--resume" in again.output
    changed = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out, "--resume",
                  "--seed", "9")
    assert changed.exit_code == 2 and "seed" in changed.output
    ok = run("train", "--backend", "recording-test", "--scene", generated[0], "--out", out, "--resume",
             "--iters", "20")
    assert ok.exit_code == 0 and len(recording_backend.calls) == 2


@pytest.mark.parametrize("bad, message", [
    ("semantic.betta=0.5", "unknown setting semantic.betta; valid semantic settings: method, iters,"),
    ("gsplat.max_gaussians=many", "setting gsplat.max_gaussians: 'many' is not a valid int"),
    ("tensorf.iters=5", "unknown section 'tensorf'; valid sections: trainer, semantic, gsplat"),
    ("semantic.beta", "expected SECTION.FIELD=VALUE"),
])
def test_misspelled_or_invalid_setting_is_one_line_and_exit_2(generated, tmp_path, bad, message):
    out = tmp_path / "run"
    result = run("train", "--backend", "gsplat", "--scene", generated[0], "--out", out, "--set", bad)
    assert result.exit_code == 2 and message in result.output, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_config_show_lists_documented_fields():
    result = run("config", "show", "gsplat", "--preset", "fast")
    assert result.exit_code == 0, result.output
    for field in ("semantic.sct_start", "gsplat.max_gaussians", "trainer.checkpoint_every"):
        assert field in result.output
    assert "30000" in result.output  # the fast preset's Gaussian cap
    assert "self-cross-training" in result.output  # a field's docstring


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


def test_help_is_fast_because_nothing_heavy_is_imported():
    import subprocess
    import sys
    import time

    code = ("import sys, laser_gs_cli.main; "
            "print(sorted(m for m in ('torch', 'numpy', 'gsplat', 'open_clip') if m in sys.modules))")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "laser_gs_cli.main", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - t0 < 2.0  # about 0.1 s unloaded; the bound leaves room for a busy machine


def _all_commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_option_has_help_text():
    missing = [(" ".join(path), opt.opts[0]) for path, cmd in _all_commands(laser) for opt in cmd.params
               if opt.param_type_name == "option" and not (opt.help or "").strip()]
    assert not missing, missing


def _names(option: str, text: str) -> bool:
    import re

    return re.search(rf"(^|[\s\[|]){re.escape(option)}($|[\s\]=|])", text) is not None


def test_readme_cli_summary_lists_every_command_and_option():
    """The README's CLI block names every command and each of its options on that command's lines."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme[readme.index("```text\nlaser [--threads"):]
    block = block[:block.index("```", 8)]
    entries: dict[str, str] = {}
    for line in block.splitlines()[1:]:
        if line.startswith("laser "):
            key = line
            entries[key] = line
        elif line.startswith(" ") and entries:
            entries[key] += " " + line.strip()
    missing = []
    for path, cmd in _all_commands(laser):
        name = "laser " + " ".join(path)
        entry = next((text for head, text in entries.items() if head.startswith(name + " ") or head == name), None)
        if entry is None:
            missing.append(name)
            continue
        missing += [f"{name} {p.opts[0]}" for p in cmd.params
                    if p.param_type_name == "option" and not any(_names(o, entry) for o in p.opts)]
    missing += [f"laser {p.opts[0]}" for p in laser.params
                if p.param_type_name == "option" and not any(_names(o, block.splitlines()[1]) for o in p.opts)]
    assert not missing, missing
