"""``laser config show``: every setting of a backend, its preset value and what it does."""

from __future__ import annotations

import click


@click.group("config")
def config_cmd() -> None:
    """Inspect the typed settings that `laser train --preset` and `--set` choose from.

    \b
    Example:
      laser config show gsplat --preset fast
    """


@config_cmd.command("show")
@click.argument("backend", required=False)
@click.option("--preset", default="fast", show_default=True, help="Show this preset's values.")
def show(backend: str | None, preset: str) -> None:
    """List the settings of BACKEND (sections trainer, semantic and the backend's own) with the preset's values.

    Without BACKEND, list the installed backends and their presets.

    \b
    Example:
      laser config show gsplat --preset fast
      laser train ... --set semantic.beta=0.5 --set gsplat.max_gaussians=50000
    """
    from rich.console import Console
    from rich.table import Table

    from laser_gs.backends.registry import get_backend, list_backends
    from laser_gs.training.settings import TrainingSettings

    console = Console()
    if backend is None:
        for name in list_backends():
            console.print(f"{name}: presets {', '.join(get_backend(name).presets)}")
        return
    cls = get_backend(backend)
    settings = TrainingSettings.resolve(cls, preset)
    for section, values in settings.sections().items():
        table = Table(title=f"{section} ({backend}, preset {preset})", show_lines=False, expand=True)
        table.add_column("setting", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("value", no_wrap=True)
        table.add_column("meaning")
        for name, tp, value, doc in type(values).describe(values):
            table.add_row(f"{section}.{name}", tp, value, doc)
        console.print(table)
