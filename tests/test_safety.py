"""Nothing lost, nothing let in: each case of issue 28, tried as a careless user (or a hostile page) would.

Every refusal is one line with exit code 2, and the files that must not change are hashed before and after.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import fit
from laser_gs.errors import LaserError, SceneError
from laser_gs_cli.main import laser
from test_user_errors import user_error


def final_error(args: list, *needles: str) -> str:
    """As ``user_error``, for commands that show progress first: the last line is the one-line error."""
    res = CliRunner().invoke(laser, [str(a) for a in args])
    last = res.output.strip().splitlines()[-1]
    assert res.exit_code == 2 and last.startswith("Error: ") and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in last, (needle, last)
    return last


def tree_hash(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (what must not change)."""
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _photos(folder: Path, n: int = 4, size: tuple[int, int] = (64, 48)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(g.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"p{i}.jpg",
                                                                                         quality=90)
    return folder


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, generated) -> Path:
    """A finished gsplat run (a few steps: only its files matter here)."""
    run = tmp_path_factory.mktemp("safety") / "run"
    fit("gsplat", generated[0], run, 12)
    return run


# --- data loss -------------------------------------------------------------------------------------------------

def test_process_never_replaces_the_photos_or_a_folder_holding_them(tmp_path):
    photos = _photos(tmp_path / "p" / "photos")
    (tmp_path / "p" / "notes.txt").write_text("mine")
    before = tree_hash(tmp_path / "p")
    user_error(["process", photos, tmp_path / "p", "--force"], "contains the input", str(photos))
    user_error(["process", photos, photos, "--force"], "contains the input")
    assert tree_hash(tmp_path / "p") == before


def test_process_force_replaces_only_an_earlier_process_output(tmp_path):
    photos = _photos(tmp_path / "photos")
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    before = tree_hash(other)
    user_error(["process", photos, other], "--force")
    user_error(["process", photos, other, "--force"], "not made by `laser process`", "remove it yourself")
    assert tree_hash(other) == before


def test_features_extract_never_deletes_the_scene_or_what_it_did_not_make(scene_copy):
    before = tree_hash(scene_copy)
    user_error(["features", "extract", "--scene", scene_copy, "--out", scene_copy, "--force", "--tiny-random-clip"],
               "contains the input")
    user_error(["features", "extract", "--scene", scene_copy, "--out", scene_copy / "images", "--force",
                "--tiny-random-clip"], "not made by `laser features extract`")
    assert tree_hash(scene_copy) == before


def test_features_extract_force_replaces_its_own_earlier_output(scene_copy):
    out = scene_copy / "clip_features"
    for _ in range(2):  # the second replaces the first
        res = CliRunner().invoke(laser, ["features", "extract", "--scene", str(scene_copy), "--out", str(out),
                                         "--force", "--tiny-random-clip", "--mode", "vanilla"])
        assert res.exit_code == 0, res.output
    assert (out / "meta.json").is_file() and not list(scene_copy.glob(".clip_features.partial-*"))


def test_export_never_overwrites_a_runs_files_even_with_force(small_run, tmp_path):
    before = tree_hash(small_run)
    for victim in ("model.ckpt", "config.json"):
        user_error(["export", small_run, "--ply", small_run / victim], "exists", "--force")
        user_error(["export", small_run, "--ply", small_run / victim, "--force"], "not a file this command writes")
    assert tree_hash(small_run) == before
    ply = tmp_path / "scene.ply"
    assert CliRunner().invoke(laser, ["export", str(small_run), "--ply", str(ply)]).exit_code == 0
    user_error(["export", small_run, "--ply", ply], "exists", "--force")
    assert CliRunner().invoke(laser, ["export", str(small_run), "--ply", str(ply), "--force"]).exit_code == 0


def test_a_run_whose_config_was_overwritten_is_a_clear_error(small_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "config.json").write_bytes(b"ply\nformat binary_little_endian 1.0\n\xff\xfe\x00binary")
    user_error(["eval", run], "config.json", "cannot read it")
    (run / "config.json").write_text("[1, 2, 3]")
    user_error(["eval", run], "config.json", "not a run's settings")
    user_error(["view", run, "--port", "0"], "config.json", "not a run's settings")


@pytest.mark.parametrize("name", ["../../x", "/tmp/laser_abs_scene", "a/b", ".."])
def test_batch_generate_names_stay_inside_out(tmp_path, name):
    plan = tmp_path / "plan.toml"
    plan.write_text(f'backends = ["tensorf"]\n[generate]\n"{name}" = ["--seed", "0"]\n')
    user_error(["batch", plan, "--out", tmp_path / "out", "--no-ray"], "not a plain name")
    assert not (tmp_path / "out").exists() and not Path("/tmp/laser_abs_scene").exists()


def _hold_lock(run: Path) -> subprocess.Popen:
    code = ("import sys, time\nfrom laser_gs.run_lock import run_lock\n"
            f"with run_lock({str(run)!r}, 'train'):\n    print('locked', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_two_writers_of_one_run_are_refused_and_a_killed_holder_frees_it(generated, tmp_path):
    from laser_gs.run_lock import RunLockedError, run_lock

    run = tmp_path / "run"
    holder = _hold_lock(run)
    try:
        out = user_error(["train", "--backend", "tensorf", "--scene", generated[0], "--out", run, "--iters", "4"],
                         "in use by PID", str(holder.pid), "laser train")
        assert "wait for it" in out
        user_error(["train", "--backend", "tensorf", "--scene", generated[0], "--out", run, "--iters", "4",
                    "--resume"], "in use by PID")
        with pytest.raises(RunLockedError):
            with run_lock(run, "export"):
                pass
    finally:
        holder.kill()  # as kill -9: the kernel drops the lock with the process
        holder.wait()
    with run_lock(run, "export"):  # a killed holder leaves no stale lock
        pass
    assert not (run / "config.json").exists()  # the refused trainings wrote nothing


# --- wrong results, silently -----------------------------------------------------------------------------------

def test_batch_keys_runs_by_resolved_scene_and_refuses_duplicates(tmp_path, generated):
    import shutil

    from laser_gs.batch import load_plan

    for d in ("a", "b"):
        shutil.copytree(generated[0], tmp_path / d / "s")
    plan = tmp_path / "plan.toml"
    plan.write_text('scenes = ["a/s", "b/s"]\nbackends = ["tensorf"]\n')
    names = [r.name for r in load_plan(plan, tmp_path / "out").runs]
    assert len(names) == len(set(names)) == 2 and all(n.startswith("s-") for n in names)
    plan.write_text('scenes = ["a/s"]\nbackends = ["tensorf"]\nseeds = [0, 0]\n')
    with pytest.raises(LaserError, match="listed twice"):
        load_plan(plan, tmp_path / "out")
    plan.write_text('scenes = ["a/s", "a/../a/s"]\nbackends = ["tensorf"]\n')
    with pytest.raises(LaserError, match="listed twice"):
        load_plan(plan, tmp_path / "out")


def test_process_names_a_truncated_a_fake_and_an_odd_sized_photo(tmp_path):
    photos = _photos(tmp_path / "photos", n=4, size=(320, 240))
    victim = photos / "p2.jpg"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    final_error(["process", photos, tmp_path / "out"], "p2.jpg", "truncated")
    _photos(photos, n=4, size=(320, 240))
    (photos / "p1.jpg").write_text("not a photo at all")
    final_error(["process", photos, tmp_path / "out"], "p1.jpg", "cannot read image")
    _photos(photos, n=4, size=(320, 240))
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(photos / "p3.jpg")
    final_error(["process", photos, tmp_path / "out"], "p3.jpg (100x100)", "320x240")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("setting, message", [
    ("semantic.beta=NaN", "not a finite number"), ("gsplat.max_gaussians=1e30", "far too large"),
    ("gsplat.lr_opacities=Infinity", "not a finite number"), ("gsplat.refine_every=0", "at least 1"),
    ("gsplat.max_gaussians=-5", "from 0 to"), ("gsplat.sh_degree=-1", "from 0 to 3"),
    ("gsplat.lr_means=NaN", "not a finite number"), ("semantic.beta=1.5", "from 0 to 1"),
    ("gsplat.lr_scales=0", "above 0"),
])
def test_settings_out_of_their_range_are_refused(generated, tmp_path, setting, message):
    user_error(["train", "--backend", "gsplat", "--scene", generated[0], "--out", tmp_path / "r", "--set", setting],
               setting.split("=")[0], message)
    assert not (tmp_path / "r").exists()


def test_config_show_lists_the_valid_ranges():
    res = CliRunner().invoke(laser, ["config", "show", "gsplat"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "Valid: from 0 to 3." in res.output and "Valid: above 0." in res.output


# --- the viewer --------------------------------------------------------------------------------------------------

@pytest.fixture
def viewer(tmp_path):
    from laser_gs.export.records import GaussianAttributes, PointSet
    from laser_gs.viewer import ViewerModel, free_port
    from laser_gs.viewer_server import serve

    n, classes = 200, ["<img src=x onerror=alert(1)>", "mug"]
    g = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(2, 8, generator=g), dim=-1)
    feature = text[torch.randint(2, (n,), generator=g)]
    gauss = GaussianAttributes(torch.full((n, 3), -3.0), torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                               torch.full((n,), 2.0), torch.zeros(n, 1, 3), torch.zeros(n, 3, 3))
    model = ViewerModel(PointSet(torch.randn(n, 3, generator=g), torch.rand(n, 3, generator=g), feature, None, gauss),
                        classes, text)
    from laser_gs.data.cameras import Cameras, intrinsics_matrix

    cams = Cameras(torch.eye(4)[None], intrinsics_matrix(50, 50, 32, 24)[None], 64, 48)
    server = serve(model, cams, tmp_path, "127.0.0.1", free_port(), allow_origins=("http://proxy.example:9000",))
    yield server
    server.stop()


def _handshake(port: int, origin: str | None) -> int:
    """The HTTP status of a WebSocket handshake to the viewer with this ``Origin`` (101: accepted)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(f"ws://127.0.0.1:{port}", origin=origin, subprotocols=["viser-v1"], open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_the_viewer_refuses_websockets_from_other_sites(viewer):
    port = viewer.server.get_port()
    assert _handshake(port, "http://evil.example") == 403
    assert _handshake(port, f"http://evil.example:{port}") == 403  # DNS rebinding: a name, not an IP
    assert _handshake(port, "http://127.0.0.1:1") == 403  # another local page
    for ok in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://proxy.example:9000", None):
        assert _handshake(port, ok) == 101, ok


def test_the_viewer_shows_html_from_a_run_as_text():
    from laser_gs.viewer_server import _legend, escape_markdown

    legend = _legend(["<img src=x onerror=alert(1)>", "mug"])
    assert "<img" not in legend and "&lt;img src=x onerror=alert(1)&gt;" in legend
    shown = escape_markdown("**<script>alert(1)</script>** [x](javascript:alert(1))")
    assert "<script>" not in shown and "\\*\\*" in shown and "\\[x\\]\\(" in shown


def test_the_viewer_checks_gui_values_on_the_server(viewer):
    viewer.slider.value = 0.4
    assert viewer.threshold == pytest.approx(0.4)
    for bad in (-5.0, 7, float("nan")):
        viewer.slider.value = bad
        assert viewer.threshold == pytest.approx(0.4) and viewer.slider.value == pytest.approx(0.4)
        assert "threshold is a number from 0 to 1" in viewer.status.content
    viewer.mode_box.value = "abc"
    assert viewer.mode == "rgb" and viewer.mode_box.value == "RGB"
    viewer.prompt.value = "<b>mug</b>"
    assert "<b>" not in viewer.status.content


def test_view_warns_beyond_loopback_and_reuses_a_time_wait_port(tmp_path):
    from laser_gs.viewer import check_port

    res = CliRunner().invoke(laser, ["view", str(tmp_path), "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 2 and "beyond this machine" in res.output
    with socket.socket() as listener:  # a port whose only socket left is in TIME-WAIT
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the viewer's server (asyncio) binds
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        conn.close()  # the server side closes first: its end goes to TIME-WAIT
        time.sleep(0.1)
        client.close()
    check_port("127.0.0.1", port)


# --- tracebacks instead of one-line errors -------------------------------------------------------------------------

def _frame(tmp_path: Path, **changes) -> Path:
    data = {"info": {"name": "img_00.png", "width": 96, "height": 72},
            "objects": [{"category": "mug", "segmentation": [[1, 1], [20, 1], [20, 20]], "bbox": [1, 1, 20, 20]}]}
    for key, value in changes.items():
        if key in ("width", "height"):
            data["info"][key] = value
        elif key == "objects":
            data["objects"] = value
        else:
            data["objects"][0][key] = value
            if key == "segmentation":
                data["objects"][0].pop("bbox")
    path = tmp_path / f"frame_{len(list(tmp_path.glob('*.json')))}.json"
    path.write_text(json.dumps(data, allow_nan=True))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"segmentation": {"points": [[1, 1]]}}, "non-empty list of polygons"),
    ({"segmentation": []}, "non-empty list of polygons"),
    ({"width": 0, "height": 0}, "positive integer"),
    ({"width": 95.5}, "positive integer"),
    ({"objects": []}, "lists no objects"),
    ({"width": 200, "height": 100}, "another aspect ratio"),
    ({"bbox": [1, 1, float("nan"), 20]}, "'bbox'"),
    ({"bbox": [1, 1, float("inf"), 20]}, "'bbox'"),
])
def test_lerf_labels_that_are_wrong_are_named_errors(tmp_path, changes, message):
    from laser_gs.data.lerf_ovs import read_frame

    path = _frame(tmp_path, **changes)
    with pytest.raises(SceneError, match=message) as err:
        read_frame(path, {"img_00": 0}, (96, 72))
    assert str(path) in str(err.value)


def test_stale_partials_of_killed_process_runs_are_removed_and_live_ones_kept(tmp_path):
    from laser_gs.process import remove_stale_partials

    out = tmp_path / "scene"
    dead = tmp_path / ".scene.partial-999999999"
    (dead / "work").mkdir(parents=True)
    live = tmp_path / f".scene.partial-{os.getpid()}"
    (live / "work").mkdir(parents=True)
    foreign = tmp_path / ".scene.partial-123456789"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not ours")
    assert remove_stale_partials(out) == [dead]
    assert not dead.exists() and live.is_dir() and foreign.is_dir()


def test_a_pickled_checkpoint_is_refused_without_suggesting_unsafe_loading(tmp_path):
    from laser_gs.training.checkpoint import FORMAT_VERSION, MAGIC, CheckpointError, load_checkpoint

    buf = io.BytesIO()
    torch.save({"model": Path("/etc")}, buf)  # any object beyond tensors and plain values
    data = buf.getvalue()
    path = tmp_path / "model.ckpt"
    path.write_bytes(MAGIC + str(FORMAT_VERSION).encode() + b"\n" + hashlib.sha256(data).hexdigest().encode()
                     + b"\n" + data)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "not a laser_gs checkpoint" in str(err.value) and "weights_only" not in str(err.value)
