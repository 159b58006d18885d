"""3D backends, found by name through the registry (see :mod:`laser_gs.backends.registry`)."""

from laser_gs.backends.registry import (
    RENDER_OUTPUTS,
    Backend,
    get_backend,
    list_backends,
    register_backend,
)

__all__ = ["Backend", "RENDER_OUTPUTS", "get_backend", "list_backends", "register_backend"]
