"""Written files get the mode open() would give them (0666 minus the umask), atomic writes included."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner

from laser_gs.atomic import atomic_write_text
from laser_gs_cli.main import laser


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode


def test_files_of_a_command_are_readable_by_others(tmp_path, umask):
    umask(0o022)
    res = CliRunner().invoke(laser, ["make-scene", str(tmp_path / "s"), "--size", "64x48", "--views", "4",
                                     "--annotated", "1", "--dim", "16"])
    assert res.exit_code == 0, res.output
    files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert len(files) > 10
    private = [str(p) for p in files if stat.S_IMODE(p.stat().st_mode) != 0o644]
    assert not private, private
