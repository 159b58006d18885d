"""Scene loading: one :class:`Scene` from LLFF, 3D-OVS or Blender folders, format auto-detected."""

from __future__ import annotations

from pathlib import Path

from laser_gs.data.blender import load_blender, transform_files
from laser_gs.data.cameras import Cameras, look_at
from laser_gs.data.colmap import load_colmap, sparse_dir
from laser_gs.data.llff import POSES_FILE, load_llff
from laser_gs.data.scene import Scene
from laser_gs.errors import SceneError

FORMATS = ("llff", "3dovs", "blender", "colmap")


def detect_format(root: Path) -> str:
    """``"blender"``, ``"3dovs"``, ``"llff"`` or ``"colmap"`` from the files present in ``root``."""
    root = Path(root)
    if not root.exists():
        raise SceneError("scene folder does not exist", root)
    if not root.is_dir():
        raise SceneError("not a folder", root, "pass the scene folder, not a file inside it")
    if transform_files(root):
        return "blender"
    if (root / POSES_FILE).exists():
        return "3dovs" if (root / "segmentations").is_dir() else "llff"
    if sparse_dir(root) is not None:
        return "colmap"
    raise SceneError("not a scene folder: found neither poses_bounds.npy (LLFF / 3D-OVS), transforms*.json "
                     "(Blender / nerfstudio) nor sparse/0 (COLMAP); for a folder of photos run `laser process "
                     "PHOTOS OUT` first", root)


def load_scene(root: str | Path, downscale: int | None = None, holdout: int | None = None,
               background: str = "white") -> Scene:
    """Load any supported scene folder.

    Args:
        root: scene folder.
        downscale: integer image downscale factor (LLFF picks ``images_N/`` when present).
        holdout: LLFF test split (every k-th view); see :func:`load_llff`.
        background: Blender background colour.
    """
    root = Path(root)
    fmt = detect_format(root)
    if fmt == "blender":
        scene = load_blender(root, downscale=downscale, background=background)
    elif fmt == "colmap":
        scene = load_colmap(root, downscale=downscale, holdout=holdout)
    else:
        scene = load_llff(root, downscale=downscale, holdout=holdout)
    scene.background = background
    return scene


__all__ = ["Cameras", "Scene", "SceneError", "detect_format", "load_scene", "look_at", "FORMATS"]
