"""Checkpoints: round trip, corruption and truncation detection, fallback, no pickle execution."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from laser_gs.training.checkpoint import (CheckpointError, list_checkpoints, load_checkpoint, load_latest,
                                          save_checkpoint, save_step)


def test_round_trip(tmp_path):
    payload = {"w": torch.arange(6.0).view(2, 3), "step": 7, "name": "x", "nested": {"a": [1, 2.5]}}
    save_checkpoint(tmp_path / "a.ckpt", payload)
    back = load_checkpoint(tmp_path / "a.ckpt")
    assert torch.equal(back["w"], payload["w"]) and back["step"] == 7 and back["nested"]["a"] == [1, 2.5]
    assert not list(tmp_path.glob(".*.tmp")), "no temp files are left behind"


@pytest.mark.parametrize("damage", ["truncate", "flip", "header"])
def test_damaged_checkpoint_is_refused(tmp_path, damage):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, {"w": torch.randn(100)})
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[-20] ^= 0xFF
    else:
        raw[:4] = b"JUNK"
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="a.ckpt"):
        load_checkpoint(path)


def test_latest_falls_back_to_previous_good(tmp_path):
    for step in (10, 20, 30):
        save_step(tmp_path, step, {"step": step}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000020.ckpt", "step_00000030.ckpt"]
    newest = list_checkpoints(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:-5])
    warnings = []
    path, state = load_latest(tmp_path, warn=warnings.append)
    assert state["step"] == 20 and path.name == "step_00000020.ckpt"
    assert warnings and "checksum" in warnings[0]


def test_every_checkpoint_corrupted_is_an_error(tmp_path):
    save_step(tmp_path, 5, {"step": 5})
    only = list_checkpoints(tmp_path)[0]
    only.write_bytes(b"LASERCKPT\n1\nabc\nxyz")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_latest(tmp_path)


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


def test_pickled_code_is_not_executed(tmp_path, monkeypatch):
    """A well-formed file whose payload holds a code-executing pickle is refused (weights_only)."""
    import hashlib

    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    pickle.dump({"x": _Evil()}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode()
    (tmp_path / "evil.ckpt").write_bytes(b"LASERCKPT\n1\n" + digest + b"\n" + data)
    with pytest.raises(CheckpointError, match="cannot decode"):
        load_checkpoint(tmp_path / "evil.ckpt")
    assert not (tmp_path / "PWNED").exists()
