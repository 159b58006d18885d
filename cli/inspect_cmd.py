"""``laser inspect``: what a scene folder contains."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from laser_gs_cli.options import scene_load_options
from laser_gs.errors import FeatureError


def _feature_summary(scene) -> dict | None:
    if scene.feature_dir is None:
        return None
    from laser_gs.features.precomputed import load_feature_dir

    try:
        fs = load_feature_dir(scene.feature_dir, scene.image_names, scene.classes or None)
    except FeatureError as exc:
        return {"path": str(scene.feature_dir), "valid": False, "error": str(exc)}
    h, w = fs.grid_size
    return {"path": str(fs.directory), "valid": True, "dim": fs.dim, "grid": f"{w}x{h}",
            "model": fs.meta.get("model"), "text_embeddings": fs.text is not None,
            "text_embeddings_aug": fs.text_aug is not None, "bytes": fs.nbytes_on_disk()}


def _points_summary(scene, triangulate: bool) -> dict:
    """Where the scene's sparse points come from: its COLMAP model, a cached triangulation, or nowhere yet."""
    if scene.points is not None:
        return {"source": "structure from motion", "count": len(scene.points)}
    from laser_gs.data import triangulate as tri

    found = tri.triangulate(scene) if triangulate else tri.load_cached(scene)
    if found is None:
        return {"source": None, "count": 0}
    return {"source": "triangulated", "count": found.info["points"], "cache": found.info["cache"],
            "mean_reprojection_error_px": found.info["mean_reprojection_error_px"]}


def _space_row(info: dict) -> str:
    """How rays are parameterised: NDC, a contracted ball (unbounded 360°), or the box."""
    if info["forward_facing"]:
        return "NDC (forward-facing rig)"
    c = info["unbounded"]
    if c is not None:
        center = ", ".join(f"{x:.2f}" for x in c["center"])
        return (f"unbounded: contracted beyond a ball of radius {c['radius']:.2f} around ({center}) "
                "(tensorf grids; gsplat background)")
    return "bounded: the bounding box"


@click.command("inspect")
@click.argument("scene_dir", metavar="SCENE", type=click.Path(file_okay=False, path_type=str))
@scene_load_options
@click.option("--triangulate", is_flag=True,
              help="For scenes without sparse points: triangulate them now from the training views (pycolmap, "
                   "known poses; cached in the scene folder, as gsplat does at training).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
def inspect(scene_dir: str, downscale: int | None, holdout: int | None, background: str, triangulate: bool,
            as_json: bool) -> None:
    """Describe a scene: format, views, resolution, cameras, classes, annotations, features, sparse points.

    \b
    Examples:
      laser inspect ../shared/data/llff_fern
      laser inspect ../shared/data/blender_lego_200 --json
      laser inspect my_scene --triangulate
    """
    from laser_gs.data import load_scene

    scene = load_scene(scene_dir, downscale=downscale, holdout=holdout, background=background)
    info = scene.summary()
    info["features"] = _feature_summary(scene)
    info["sparse_points"] = _points_summary(scene, triangulate)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    table = Table(title=f"Scene {scene_dir}", show_header=False, title_justify="left")
    table.add_column("field", style="bold cyan")
    table.add_column("value")
    intr = info["intrinsics"]
    rows = [
        ("format", info["format"] + (" (forward-facing)" if info["forward_facing"] else " (360°)")),
        ("space", _space_row(info)),
        ("views", f"{info['views']}  (" + ", ".join(f"{k} {v}" for k, v in info["splits"].items()) + ")"),
        ("resolution", info["resolution"]),
        ("focal (px)", f"fx {intr['fx_mean']:.1f}, fy {intr['fy_mean']:.1f}, FoV-x {intr['fov_x_deg']:.1f}°"),
        ("principal point", f"({intr['cx_mean']:.1f}, {intr['cy_mean']:.1f})"),
        ("near / far", f"{info['near_far'][0]:.3f} / {info['near_far'][1]:.3f}"),
        ("bounding box", " .. ".join("(" + ", ".join(f"{x:.2f}" for x in c) + ")" for c in info["aabb"])),
        ("classes", ", ".join(info["classes"]) or "none"),
        ("annotated views", ", ".join(f"{i} ({n})" for i, n in zip(info["annotated_views"], info["annotated_names"]))
         or "none"),
    ]
    feats = info["features"]
    if feats is None:
        rows.append(("features", "none (use --features clip, or `laser features extract`)"))
    elif not feats["valid"]:
        rows.append(("features", f"[red]invalid[/red]: {feats['error']}"))
    else:
        rows.append(("features", f"{feats['path']}: dim {feats['dim']}, grid {feats['grid']}, "
                                 f"{feats['bytes'] / 1e6:.1f} MB, model {feats['model']}"))
    pts = info["sparse_points"]
    if pts["source"] == "triangulated":
        rows.append(("sparse points", f"{pts['count']:,} triangulated from the training views "
                                      f"({pts['mean_reprojection_error_px'] or 0:.2f} px), cached in {pts['cache']}"))
    elif pts["source"]:
        rows.append(("sparse points", f"{pts['count']:,} ({pts['source']})"))
    else:
        rows.append(("sparse points", "none yet: gsplat triangulates them at training (or: laser inspect "
                                      "--triangulate)"))
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
