"""Scene loading: one :class:`Scene` from LLFF, 3D-OVS, Blender or COLMAP folders, format auto-detected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from laser_gs.data.blender import load_blender, transform_files
from laser_gs.data.cameras import Cameras, look_at
from laser_gs.data.colmap import load_colmap, sparse_dir
from laser_gs.data.llff import POSES_FILE, load_llff
from laser_gs.data.scene import Scene
from laser_gs.errors import SceneError

@dataclass(frozen=True)
class SceneFormat:
    """A scene layout: how to recognise its folder and how to load it."""

    detect: Callable[[Path], bool]
    """Whether ``root`` (an existing folder) is in this layout, from the files present."""
    load: Callable[..., Scene]
    """``load(root, downscale=, holdout=, background=)`` -> :class:`Scene`."""


#: the scene layouts, tried in this order (a 3D-OVS folder is also an LLFF one: it comes first). A new layout
#: is one entry here.
SCENE_FORMATS: dict[str, SceneFormat] = {
    "blender": SceneFormat(lambda root: bool(transform_files(root)),
                           lambda root, downscale, holdout, background: load_blender(root, downscale=downscale,
                                                                                     background=background)),
    "3dovs": SceneFormat(lambda root: (root / POSES_FILE).exists() and (root / "segmentations").is_dir(),
                         lambda root, downscale, holdout, background: load_llff(root, downscale=downscale,
                                                                                holdout=holdout)),
    "llff": SceneFormat(lambda root: (root / POSES_FILE).exists(),
                        lambda root, downscale, holdout, background: load_llff(root, downscale=downscale,
                                                                               holdout=holdout)),
    "colmap": SceneFormat(lambda root: sparse_dir(root) is not None,
                          lambda root, downscale, holdout, background: load_colmap(root, downscale=downscale,
                                                                                   holdout=holdout)),
}
FORMATS = ("llff", "3dovs", "blender", "colmap")


def detect_format(root: Path) -> str:
    """The name of the first of :data:`SCENE_FORMATS` whose files ``root`` holds."""
    root = Path(root)
    if not root.exists():
        raise SceneError("scene folder does not exist", root)
    if not root.is_dir():
        raise SceneError("not a folder", root, "pass the scene folder, not a file inside it")
    for name, fmt in SCENE_FORMATS.items():
        if fmt.detect(root):
            return name
    raise SceneError("not a scene folder: found neither poses_bounds.npy (LLFF / 3D-OVS), transforms*.json "
                     "(Blender / nerfstudio) nor sparse/0 (COLMAP); for a folder of photos run `laser process "
                     "PHOTOS OUT` first", root)


def load_scene(root: str | Path, downscale: int | None = None, holdout: int | None = None,
               background: str = "white") -> Scene:
    """Load any supported scene folder (its format detected, see :data:`SCENE_FORMATS`).

    Args:
        root: scene folder.
        downscale: integer image downscale factor (LLFF picks ``images_N/`` when present).
        holdout: LLFF test split (every k-th view); see :func:`load_llff`.
        background: Blender background colour.
    """
    root = Path(root)
    scene = SCENE_FORMATS[detect_format(root)].load(root, downscale=downscale, holdout=holdout,
                                                    background=background)
    scene.background = background
    return scene


__all__ = ["Cameras", "Scene", "SceneError", "detect_format", "load_scene", "look_at", "FORMATS", "SCENE_FORMATS"]
