"""Backend interface and registry.

A backend is a 3D representation (TensoRF volumes, 3D Gaussians, ...) that can
be fitted to a :class:`~laser_gs.data.Scene`, render any camera to RGB,
features and labels, and save, load and export itself. Backends are found by
name: built-in ones are imported lazily from :data:`BUILTIN_MODULES`, and
third-party packages add theirs through the ``laser_gs.backends`` entry-point
group, so a new backend never requires editing the others or the CLI::

    [project.entry-points."laser_gs.backends"]
    mybackend = "my_package.backend"   # a module that calls register_backend
"""

from __future__ import annotations

import abc
import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, ClassVar

from rich.console import Console
from torch import Tensor

from laser_gs.data.cameras import Cameras
from laser_gs.data.scene import Scene
from laser_gs.errors import BackendError
from laser_gs.features.precomputed import FeatureSet

ENTRY_POINT_GROUP = "laser_gs.backends"
# name -> module that registers it when imported. Modules that do not exist yet are skipped.
BUILTIN_MODULES: dict[str, str] = {
    "tensorf": "laser_gs.backends.tensorf",
    "gsplat": "laser_gs.backends.gsplat",
}

#: File name of a run's final model, loaded with :meth:`Backend.load`.
MODEL_FILE = "model.ckpt"

#: Names of the outputs :meth:`Backend.render` may return.
RENDER_OUTPUTS = ("rgb", "depth", "feature", "label", "logits", "segmentation")


class Backend(abc.ABC):
    """What every backend implements.

    Shapes: a render of one camera of size ``H x W`` returns a dict with
    ``rgb`` ``[H, W, 3]``, ``depth`` ``[H, W]``, ``feature`` ``[H, W, D]``
    (CLIP space), ``label`` ``[H, W, L]`` (label-volume probabilities) and
    ``logits`` ``[H, W, C]`` (Eq. 4 against the given text embeddings), each
    only when asked for.
    """

    #: registry name, set by :func:`register_backend`.
    name: ClassVar[str] = ""
    #: class prompts and their ``[C, D]`` text embeddings saved with the model (empty / None without).
    classes: list[str]
    text: Tensor | None

    @abc.abstractmethod
    def fit(self, scene: Scene, config: dict[str, Any], run_dir: Path, features: FeatureSet | None = None,
            console: Console | None = None) -> Any:
        """Train on ``scene`` with ``config`` (a saved :class:`~laser_gs.run.RunConfig` as a dict).

        ``features`` are the dense CLIP features (None: reconstruction only).
        Checkpoints go to ``run_dir``; an existing checkpoint there is resumed.
        The final model is written to ``run_dir / MODEL_FILE``.
        """

    @abc.abstractmethod
    def render(self, cameras: Cameras, index: int, outputs: tuple[str, ...] = ("rgb",),
               text: Tensor | None = None) -> dict[str, Tensor]:
        """Render camera ``index`` of ``cameras``: a dict with the requested ``outputs`` only.

        Outputs: ``rgb`` ``[H, W, 3]``, ``depth`` ``[H, W]``, ``feature`` ``[H, W, D]`` (rendered CLIP
        feature), ``label`` ``[H, W, D]`` (label-volume distribution), ``logits`` ``[H, W, C]`` (cosine
        of the feature against ``text`` ``[C, D]``, computed without forming ``feature`` where possible),
        ``segmentation`` ``[H, W]`` int64 (argmax of ``logits``: the label map, which backends may get
        from C composited class scores). Backends compute only what is asked for, so
        ``("rgb", "segmentation")`` is the cheapest way to a picture and its label map.
        """

    def model_state(self) -> dict[str, Any]:
        """Everything :meth:`load` needs (tensors and plain containers only), with ``"backend": name``."""
        raise NotImplementedError

    def load_model_state(self, state: dict[str, Any]) -> None:
        """Rebuild the model from :meth:`model_state` output (on ``self.device``)."""
        raise NotImplementedError

    def _load_weights(self, parts: list[tuple[Any, dict[str, Any]]]) -> None:
        """Load ``(module, state_dict)`` pairs; a shape or key mismatch is a :class:`CheckpointError`."""
        from laser_gs.training.checkpoint import CheckpointError

        try:
            for module, state in parts:
                module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"the checkpoint does not match this laser_gs's {self.name} model (written by "
                                  f"another version?): {str(exc).splitlines()[0]}; retrain the run") from None

    def save(self, path: Path) -> None:
        """Write a checkpoint (atomically, checksummed) of :meth:`model_state`."""
        from laser_gs.training.checkpoint import save_checkpoint

        save_checkpoint(Path(path), self.model_state())

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "Backend":
        """Read a checkpoint written by :meth:`save`, refusing one of another backend."""
        from laser_gs.training.checkpoint import CheckpointError, load_checkpoint
        from laser_gs.training.schedule import resolve_device

        self = cls()
        self.device = resolve_device(device)
        state = load_checkpoint(Path(path), map_location="cpu")
        if state.get("backend") != cls.name:
            raise CheckpointError(f"{path}: a {state.get('backend')!r} checkpoint, not {cls.name}")
        self.load_model_state(state)
        return self

    def semantic_points(self, cameras: Cameras, views: list[int]) -> dict[str, Tensor]:
        """The 3D points this backend labels and exports, in :meth:`export` order (CPU tensors).

        ``xyz`` and ``rgb`` ``[P, 3]``; with a semantic field also ``feature`` and ``label`` ``[P, D]``.
        Backends whose points depend on the views (surface points of a field) use ``cameras`` / ``views``.
        """
        raise NotImplementedError(f"backend {self.name!r} does not provide semantic_points")

    @abc.abstractmethod
    def export(self, path: Path, prompts: list[str] | None = None, text: Tensor | None = None,
               color_by_label: bool = False, keep: Tensor | None = None, **options: Any) -> list[Path]:
        """Write PLY file(s) of the scene, labeled when ``text`` is given; returns the paths written.

        ``keep`` ``[P]`` bool selects points of :meth:`semantic_points` (same cameras / views) to write.
        """


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
