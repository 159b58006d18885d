"""The backend registry (the protocol a backend implements is :mod:`laser_gs.backends.protocol`).

Backends are found by
name: built-in ones are imported lazily from :data:`BUILTIN_MODULES`, and
third-party packages add theirs through the ``laser_gs.backends`` entry-point
group, so a new backend never requires editing the others or the CLI::

    [project.entry-points."laser_gs.backends"]
    mybackend = "my_package.backend"   # a module that calls register_backend
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable

from laser_gs.backends.protocol import MODEL_FILE, RENDER_OUTPUTS, Backend
from laser_gs.errors import BackendError

ENTRY_POINT_GROUP = "laser_gs.backends"
# name -> module that registers it when imported. Modules that do not exist yet are skipped.
BUILTIN_MODULES: dict[str, str] = {
    "tensorf": "laser_gs.backends.tensorf",
    "gsplat": "laser_gs.backends.gsplat",
}

__all__ = ["Backend", "MODEL_FILE", "RENDER_OUTPUTS", "get_backend", "list_backends", "register_backend"]


_REGISTRY: dict[str, type[Backend]] = {}
_discovered = False


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator adding a :class:`Backend` subclass to the registry under ``name``."""

    def decorate(cls: type[Backend]) -> type[Backend]:
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise TypeError(f"{cls!r} is not a Backend subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"backend name {name!r} is already registered by {existing.__module__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _discover() -> None:
    """Import built-in backend modules and entry points once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in BUILTIN_MODULES.values():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but one of its imports is missing: a real error
                raise
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def list_backends() -> list[str]:
    """Registered backend names, sorted."""
    _discover()
    return sorted(_REGISTRY)


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name``.

    Raises:
        BackendError: for an unknown name, listing the available ones.
    """
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        available = ", ".join(sorted(_REGISTRY)) or "none installed"
        raise BackendError(f"unknown backend {name!r}; available: {available}") from None
