"""``laser process``: a folder of photos -> a posed scene (structure from motion with pycolmap)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("process")
@click.argument("photos", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--downscale", type=click.IntRange(min=1), default=None,
              help="Shrink the photos by this factor first (phone photos: 4 or 8 keeps it fast).")
@click.option("--matcher", type=click.Choice(["auto", "exhaustive", "sequential"]), default="auto", show_default=True,
              help="Which photo pairs are matched: every pair (up to 100 photos with 'auto') or neighbours in "
                   "name order (video frames, large sets).")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Take frames from a video instead (not built in: extract them first, see the message).")
@click.option("--force", is_flag=True, help="Replace OUT if an earlier `laser process` made it (never anything "
              "else, never a folder holding PHOTOS).")
def process_cmd(photos: Path, out: Path, downscale: int | None, matcher: str, video: Path | None, force: bool) -> None:
    """Pose your own photos: SIFT features, matching, incremental mapping and undistortion (pycolmap).

    OUT gets images/ and sparse/0 (the COLMAP layout every laser command reads) and process.json with the
    summary. Nothing is written unless everything succeeds.

    \b
    Example:
      laser process my_photos/ my_scene --downscale 4
      laser train --backend gsplat --scene my_scene --out runs/mine --features clip
    """
    from laser_gs.atomic import check_writable
    from laser_gs.errors import LaserError
    from laser_gs.process import advice, process_photos
    from laser_gs.safety import prepare_output_dir

    if video is not None:
        raise LaserError(f"--video {video}: video input is not built in; extract frames first, e.g. `ffmpeg -i "
                         f"{video} -vf fps=2 {photos}/%04d.jpg`, then run `laser process {photos} {out}`")
    prepare_output_dir(out, [photos], "process", force)  # before any work; process_photos checks again
    check_writable(out, "OUT")
    s = process_photos(photos, out, downscale, matcher, force=force)
    click.echo(f"Posed {s['registered']} of {s['photos']} photos, {s['points']:,} points, mean reprojection error "
               f"{s['mean_reprojection_error_px']:.2f} px, in {s['total_s']:.0f} s: {out}")
    for note in advice(s):
        click.echo(f"Note: {note}")
    click.echo(f"Next: laser train --backend gsplat --scene {out} --out runs/{out.name} --features clip "
               "--clip-weights ViT-B-16.pt   (or --features none: reconstruction only)")
