"""3D-OVS segmentation annotations: ``segmentations/classes.txt`` + ``segmentations/<k>/<class>.png``.

``<k>`` is the integer index of the annotated image in sorted file-name order.
Each annotated folder holds one mask per class; a pixel belongs to the class
when its grey value is 255 (transparent pixels never do).
"""

from __future__ import annotations

from pathlib import Path

import torch

from laser_gs.data.images import IMAGE_SUFFIXES, read_mask
from laser_gs.errors import SceneError
from laser_gs.data.safepath import resolve_inside

CLASSES_FILE = "classes.txt"


def read_classes(path: Path) -> list[str]:
    """Class prompts, one per non-blank line, stripped; empty or duplicate lists are errors."""
    if not path.is_file():
        raise SceneError("class list not found", path, "write one class prompt per line")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"cannot read class list ({exc})", path) from None
    classes = [line.strip() for line in text.splitlines() if line.strip()]
    if not classes:
        raise SceneError("class list is empty", path, "write one class prompt per line")
    seen: set[str] = set()
    for c in classes:
        if c in seen:
            raise SceneError(f"duplicate class {c!r}", path, "each class prompt must appear once")
        seen.add(c)
    return classes


def _mask_file(folder: Path, cls: str) -> Path | None:
    for suffix in (".png",) + tuple(s for s in IMAGE_SUFFIXES if s != ".png"):
        candidate = resolve_inside(folder, cls + suffix)
        if candidate.is_file():
            return candidate
    return None


def read_segmentations(seg_dir: Path, image_names: list[str], size: tuple[int, int]
                       ) -> tuple[list[str], dict[int, torch.Tensor]]:
    """Read classes and masks.

    Args:
        seg_dir: the ``segmentations`` folder.
        image_names: stems of the scene's images in index order.
        size: ``(W, H)`` of the loaded images; masks are checked against it.

    Returns:
        the class list and ``{view index: [C, H, W] bool}``.
    """
    classes = read_classes(seg_dir / CLASSES_FILE)
    masks: dict[int, torch.Tensor] = {}
    for folder in sorted(p for p in seg_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            index = int(folder.name)
        except ValueError:
            raise SceneError("annotation folder name is not an image index", folder,
                             "name each folder by the integer index of its image in sorted order") from None
        if not 0 <= index < len(image_names):
            raise SceneError(f"annotated index {index} is out of range: the scene has {len(image_names)} images",
                             folder, f"use an index from 0 to {len(image_names) - 1}")
        per_class = []
        for cls in classes:
            f = _mask_file(folder, cls)
            if f is None:
                raise SceneError(f"mask for class {cls!r} is missing", folder / f"{cls}.png",
                                 "every annotated view needs one mask per line of classes.txt")
            per_class.append(torch.from_numpy(read_mask(f, size)))
        masks[index] = torch.stack(per_class)
    return classes, masks
