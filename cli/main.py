"""The ``laser`` command: a click group whose commands live in small modules beside this one."""

from __future__ import annotations

import os
import sys

import click

from laser_gs import __version__
from laser_gs.errors import LaserError


class UserError(click.ClickException):
    """A :class:`LaserError` shown as ``Error: ...`` with exit code 2."""

    exit_code = 2


class LaserGroup(click.Group):
    """Turns :class:`LaserError` and bad command lines into a one-line message unless ``--debug`` is given."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a bad option value or a missing argument: one line naming it
            if ctx.find_root().params.get("debug"):
                raise
            hint = f" (see `laser {exc.ctx.command_path.partition(' ')[2]} --help`)" if exc.ctx else ""
            raise UserError(exc.format_message() + hint) from None
        except (LaserError, PermissionError) as exc:
            if ctx.find_root().params.get("debug"):
                raise
            if isinstance(exc, PermissionError):  # a path the user chose cannot be written or read
                exc = LaserError(f"{exc.filename}: permission denied; choose another location or fix its "
                                 "permissions")
            err = UserError(str(exc))
            err.exit_code = getattr(exc, "exit_code", 2)
            raise err from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # keep registration order: the order of a typical session


@click.group(cls=LaserGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full Python tracebacks instead of one-line errors.")
@click.option("--threads", type=click.IntRange(min=1), default=None, envvar="LASER_THREADS", show_envvar=True,
              help="CPU threads for torch (default: the cores this process may use). Running several trainings "
                   "at once? Give each cores / trainings threads: oversubscribed cores run far slower.")
@click.version_option(__version__, prog_name="laser")
def laser(debug: bool, threads: int | None) -> None:
    """Language-guided 3D segmentation (Laser) with TensoRF and Gaussian-splatting backends.

    \b
    A typical session:
      laser make-scene demo_scene              # or use your own LLFF / 3D-OVS / Blender folder
      laser inspect demo_scene
      laser train --backend gsplat --scene demo_scene --out runs/demo
    """
    set_threads(threads)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Use ``threads`` CPU threads in torch and its BLAS; returns the count.

    Default: ``OMP_NUM_THREADS`` when the environment sets it, else :func:`available_cores`. Set before
    torch is imported (the commands import it lazily), through the variables its thread pools read, and
    directly when it is already loaded.
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    n = threads or (int(env) if env.isdigit() and int(env) > 0 else available_cores())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def _register_commands() -> None:
    from laser_gs_cli import (batch_cmd, bench_cmd, config_cmd, eval_cmd, export_cmd, features_cmd, inspect_cmd,
                              make_scene_cmd, process_cmd, query_cmd, render_cmd, segment_cmd, train_cmd, view_cmd)

    laser.add_command(process_cmd.process_cmd)
    laser.add_command(make_scene_cmd.make_scene)
    laser.add_command(inspect_cmd.inspect)
    laser.add_command(features_cmd.features)
    laser.add_command(train_cmd.train)
    laser.add_command(eval_cmd.eval_cmd)
    laser.add_command(segment_cmd.segment_cmd)
    laser.add_command(query_cmd.query_cmd)
    laser.add_command(render_cmd.render_cmd)
    laser.add_command(view_cmd.view_cmd)
    laser.add_command(export_cmd.export_cmd)
    laser.add_command(bench_cmd.bench_cmd)
    laser.add_command(batch_cmd.batch_cmd)
    laser.add_command(config_cmd.config_cmd)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    sys.exit(laser.main(prog_name="laser"))


if __name__ == "__main__":
    main()
