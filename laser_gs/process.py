"""``laser process``: photos -> a posed scene (COLMAP layout) with pycolmap's structure from motion.

Phases: SIFT features (one camera shared by all photos), matching (exhaustive for up to 100
photos, sequential otherwise, as for video frames), incremental mapping, undistortion to a
pinhole camera. The scene is written to a temporary folder beside ``OUT`` and renamed only when
everything succeeded, so a failure never leaves half a scene.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from laser_gs.data.images import list_images, open_image, read_rgb, write_png
from laser_gs.errors import LaserError, SceneError
from laser_gs.progress import phase, stderr_console
from laser_gs.safety import MARKER, mark_output, pid_alive, prepare_output_dir

EXHAUSTIVE_MAX = 100  # photos up to which every pair is matched


def _partial_name(out: Path, pid: int) -> Path:
    return out.with_name(f".{out.name}.partial-{pid}")


def remove_stale_partials(out: Path) -> list[Path]:
    """Remove the temporary folders of earlier runs for ``out`` whose process is gone (killed, power loss).

    Only folders named as this module names them, holding its ``work`` folder or a finished scene, and whose
    PID no longer runs, are removed: they are ours and no process will finish them.
    """
    removed = []
    for tmp in out.parent.glob(f".{out.name}.partial-*") if out.parent.is_dir() else []:
        pid = tmp.name.rsplit("-", 1)[-1]
        if (tmp.is_dir() and pid.isdigit() and not pid_alive(int(pid))
                and ((tmp / "work").is_dir() or (tmp / MARKER).is_file())):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def check_photos(files: list[Path], console: Console) -> tuple[int, int]:
    """Decode every photo fully and check they share one size: ``(W, H)``. Errors name the file and the cause
    (a truncated or corrupt file, a non-image, a photo of another size), before any structure from motion."""
    from laser_gs.progress import progress

    sizes: dict[tuple[int, int], list[Path]] = {}
    with progress("checking photos", len(files), console, unit=" photos") as advance:
        for f in files:
            with open_image(f) as img:  # decodes all of it: a truncated file fails here, named
                sizes.setdefault(img.size, []).append(f)
            advance()
    if len(sizes) > 1:
        (w, h), common = max(sizes.items(), key=lambda kv: len(kv[1]))
        odd = [(f, size) for size, fs in sizes.items() if size != (w, h) for f in fs]
        listed = ", ".join(f"{f.name} ({sw}x{sh})" for f, (sw, sh) in odd[:5]) + (" ..." if len(odd) > 5 else "")
        raise SceneError(f"{len(odd)} photo(s) differ in size from the other {len(common)} ({w}x{h}): {listed}; "
                         "one camera is assumed for all photos: remove them or resize them to match", odd[0][0])
    return next(iter(sizes))


def process_photos(photos: Path, out: Path, downscale: int | None = None, matcher: str = "auto",
                   console: Console | None = None, force: bool = False) -> dict[str, Any]:
    """Structure from motion on the photos in ``photos``; writes ``out/images``, ``out/sparse/0`` and
    ``out/process.json`` (the summary, also returned).

    An existing non-empty ``out`` is replaced only with ``force`` and only if an earlier ``laser process`` made
    it; ``out`` never is or contains ``photos`` (see :mod:`laser_gs.safety`).
    """
    import pycolmap

    pycolmap.logging.minloglevel = 2  # errors only: our own progress says what happens
    console = console or stderr_console()
    photos, out = Path(photos), Path(out)
    replace = prepare_output_dir(out, [photos], "process", force)
    files = list_images(photos) if photos.is_dir() else []
    if len(files) < 3:
        raise SceneError(f"found {len(files)} photos (.jpg/.png); structure from motion needs at least 3 of one "
                         "scene, taken from different places", photos)
    for stale in remove_stale_partials(out):
        console.print(f"Removed {stale}, left by an earlier `laser process` that was stopped")
    check_photos(files, console)
    tmp = _partial_name(out, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    work, source = tmp / "work", tmp / "work" / "images"
    source.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        from laser_gs.progress import progress

        with progress("preparing photos", len(files), console, unit=" photos") as advance:
            for f in files:  # downscaled copies, or links to the originals
                if downscale and downscale > 1:
                    img = read_rgb(f)
                    h, w = img.shape[:2]
                    write_png(source / f"{f.stem}.png", read_rgb(f, (w // downscale, h // downscale)))
                else:
                    os.symlink(f.resolve(), source / f.name)
                advance()
        db = work / "database.db"
        timings = {}
        with phase(console, f"extracting SIFT features of {len(files)} photos"):
            t = time.perf_counter()
            pycolmap.extract_features(db, source, camera_mode=pycolmap.CameraMode.SINGLE)
            timings["features_s"] = time.perf_counter() - t
        kind = matcher if matcher != "auto" else ("exhaustive" if len(files) <= EXHAUSTIVE_MAX else "sequential")
        with phase(console, f"matching ({kind})"):
            t = time.perf_counter()
            (pycolmap.match_exhaustive if kind == "exhaustive" else pycolmap.match_sequential)(db)
            timings["matching_s"] = time.perf_counter() - t
        with phase(console, "incremental mapping"):
            t = time.perf_counter()
            models = pycolmap.incremental_mapping(db, source, work / "sparse")
            timings["mapping_s"] = time.perf_counter() - t
        if not models:
            raise LaserError(f"{photos}: structure from motion found no model: the photos share too few features "
                             "(too little overlap, blur or texture-less surfaces); take more, overlapping photos")
        best_id = max(models, key=lambda k: models[k].num_reg_images())
        rec = models[best_id]
        registered = {rec.images[i].name for i in rec.reg_image_ids()}
        unregistered = sorted(f.name if not (downscale and downscale > 1) else f"{f.stem}.png" for f in files
                              if (f.name if not (downscale and downscale > 1) else f"{f.stem}.png") not in registered)
        with phase(console, "undistorting to a pinhole camera"):
            t = time.perf_counter()
            pycolmap.undistort_images(tmp / "undistorted", work / "sparse" / str(best_id), source)
            timings["undistort_s"] = time.perf_counter() - t
        (tmp / "sparse").mkdir()
        shutil.move(str(tmp / "undistorted" / "images"), str(tmp / "images"))
        shutil.move(str(tmp / "undistorted" / "sparse"), str(tmp / "sparse" / "0"))
        final = pycolmap.Reconstruction(str(tmp / "sparse" / "0"))
        summary = {"photos": len(files), "registered": len(registered), "unregistered": unregistered,
                   "models": len(models), "points": int(final.num_points3D()),
                   "mean_reprojection_error_px": float(rec.compute_mean_reprojection_error()),
                   "matcher": kind, "downscale": downscale or 1, **timings,
                   "total_s": time.perf_counter() - t0}
        (tmp / "process.json").write_text(json.dumps(summary, indent=2))
        shutil.rmtree(tmp / "undistorted", ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        mark_output(tmp, "process")
        if replace:  # checked above: an earlier output of `laser process`, with no input inside it
            shutil.rmtree(out)
        elif out.is_dir():
            out.rmdir()  # empty (checked above); rename needs it gone
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def advice(summary: dict[str, Any]) -> list[str]:
    """What to tell the user when not every photo made it into one model."""
    notes = []
    if summary["unregistered"]:
        shown = ", ".join(summary["unregistered"][:8]) + (" ..." if len(summary["unregistered"]) > 8 else "")
        notes.append(f"{len(summary['unregistered'])} photo(s) could not be placed: {shown}. They overlap too little "
                     "with the others, or are blurred; add photos between them and the rest, or remove them.")
    if summary["models"] > 1:
        notes.append(f"the photos fell into {summary['models']} separate groups; the largest was kept. Add photos "
                     "that bridge the groups (more overlap between consecutive shots).")
    return notes
