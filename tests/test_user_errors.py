"""Every user error the CLI can meet is one line, exit code 2, no traceback, and names the file or option
(and, where there is one, the next step)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from laser_gs_cli.main import laser


def user_error(args: list, *needles: str) -> str:
    res = CliRunner().invoke(laser, [str(a) for a in args])
    out = res.output.strip()
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "\n" not in out and out.startswith("Error: ") and "Traceback" not in out, out
    for needle in needles:
        assert needle in out, (needle, out)
    return out


def test_unwritable_output_locations_are_refused_before_any_work(tmp_path, generated):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    user_error(["make-scene", blocker / "scene"], "OUT", str(blocker), "is a file")
    user_error(["train", "--backend", "tensorf", "--scene", generated[0], "--out", blocker / "run"], "--out",
               str(blocker))
    user_error(["features", "extract", "--scene", generated[0], "--out", blocker / "f", "--tiny-random-clip"],
               "--out", str(blocker))


def test_corrupt_clip_weights_give_our_message_not_torchs(tmp_path, generated):
    bad = tmp_path / "ViT-B-16.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    out = user_error(["features", "extract", "--scene", generated[0], "--clip-weights", bad, "--out", tmp_path / "f"],
                     str(bad), "download the weights again")
    assert "weights_only=False" not in out and "file an issue" not in out


def test_garbage_npy_files_name_the_file_and_the_fix(scene_copy):
    (scene_copy / "poses_bounds.npy").write_bytes(b"\x93NUMPY garbage")
    out = user_error(["inspect", scene_copy], "poses_bounds.npy", "not a readable numeric .npy")
    assert "allow_pickle" not in out


def test_garbage_feature_file_points_to_re_extraction(scene_copy, tmp_path):
    victim = sorted((scene_copy / "features").glob("*.npy"))[0]
    victim.write_bytes(b"not numpy at all")
    out = user_error(["train", "--backend", "gsplat", "--scene", scene_copy, "--out", tmp_path / "r"], victim.name,
                     "laser features extract")
    assert "allow_pickle" not in out and not (tmp_path / "r").exists()


def test_missing_feature_file_points_to_extraction(scene_copy, tmp_path):
    sorted((scene_copy / "features").glob("*.npy"))[0].unlink()
    user_error(["train", "--backend", "gsplat", "--scene", scene_copy, "--out", tmp_path / "r"], "not found",
               "laser features extract")


def test_nan_in_near_far_is_named_as_such(scene_copy):
    arr = np.load(scene_copy / "poses_bounds.npy")
    arr[2, 16] = np.nan
    np.save(scene_copy / "poses_bounds.npy", arr)
    user_error(["inspect", scene_copy], "near/far bounds", "views [2]")


@pytest.mark.parametrize("args, option", [
    (["make-scene", "OUT", "--size", "0x0"], "--size"),
    (["bench", "RUN", "--size", "big"], "--size"),
    (["train", "--scene", "x", "--out", "y"], "--backend"),
])
def test_bad_option_values_name_the_option(tmp_path, args, option):
    user_error([a if a not in ("OUT", "RUN") else tmp_path / a for a in args], option)


def test_damaged_model_says_what_to_do(tmp_path):
    from laser_gs.training.checkpoint import CheckpointError, save_checkpoint, load_checkpoint

    path = tmp_path / "model.ckpt"
    save_checkpoint(path, {"x": 1})
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match="--resume"):
        load_checkpoint(path)


def test_duplicate_prompts_are_refused():
    from laser_gs.errors import LaserError
    from laser_gs.prompts import parse_prompts

    assert parse_prompts(" red  apple, Blue mug ") == ["red apple", "Blue mug"]
    with pytest.raises(LaserError, match="'Red Apple' is given twice"):
        parse_prompts("red apple,blue mug,Red Apple")
