"""``laser view``: a browser viewer with live text queries (viser; the browser renders the splats)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from laser_gs_cli.options import clip_weights_option, render_options, with_clip_weights


@click.command("view")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to serve on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default serves this machine only (use 0.0.0.0 to share it on "
                   "your network).")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              help="Also accept pages of this origin (scheme://host:port), e.g. a proxy in front of the viewer; "
                   "by default only the viewer's own page may connect.")
@click.option("--max-points", type=click.IntRange(min=1), default=None,
              help="Show at most this many Gaussians / points (a random subset), for slow browsers.")
@click.option("--point-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Point size of field runs (tensorf) in scene units (default: from the scene's extent).")
@clip_weights_option
@render_options
def view_cmd(run_dir: Path, port: int, host: str, allow_origins: tuple[str, ...], max_points: int | None,
             point_size: float | None, clip_weights: Path | None, device: str, max_memory_gb: float | None) -> None:
    """Open a trained run in the browser: fly through it, type a prompt, see it light up.

    Gaussian runs are rendered by the browser itself (splats); tensorf runs as a point cloud of their
    surfaces. The panel has a prompt box, RGB / class-label / relevancy views, a threshold, the class
    legend, the training cameras (click one to look through it) and an export of the selection as PLY.
    Prompts that are the run's classes need no CLIP weights; others are encoded with the run's CLIP
    (--clip-weights, else the weights it was trained with). Ctrl-C stops the server.

    \b
    Example:
      laser view runs/demo            # then open http://localhost:8080
    """
    from laser_gs.memory import set_memory_limit
    from laser_gs.progress import stderr_console
    from laser_gs.run import open_run
    from laser_gs.viewer import check_port, free_port, load_model
    from laser_gs.viewer_origin import is_loopback
    from laser_gs.viewer_server import serve

    set_memory_limit(max_memory_gb)
    port = port or free_port(host)
    check_port(host, port)
    if not is_loopback(host):
        click.echo(f"Warning: --host {host} serves the viewer beyond this machine: anyone who can reach port {port} "
                   "can see the scene, run prompts and export into the run (there is no login). Use the default "
                   "127.0.0.1 unless you mean to share it.", err=True)
    console = stderr_console()
    with console.status("loading the run"):
        config, backend, scene = open_run(run_dir, device)
        model = load_model(backend, with_clip_weights(config, clip_weights), scene, max_points)
    viewer = serve(model, scene.cameras, run_dir, host, port, point_size, allow_origins)
    kind = "Gaussians" if model.points.gaussians is not None else "points"
    click.echo(f"Viewing {run_dir} ({len(model.points):,} {kind}) "
               f"at {viewer.url}  (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        click.echo("Stopping the viewer")
    finally:
        viewer.stop()
