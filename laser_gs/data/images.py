"""Reading and writing images with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from laser_gs.errors import SceneError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in sorted name order (the 3D-OVS index order)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def open_image(path: Path) -> Image.Image:
    """Open an image fully (decoding now, so a truncated file fails here)."""
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise SceneError("image file not found", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise SceneError(f"cannot read image ({exc.__class__.__name__}: {exc})", path,
                         "re-export it as PNG or JPEG") from None
    return img


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """``[H, W, 3]`` float32 RGB in [0, 1], resized with LANCZOS to ``size=(W, H)`` if given."""
    img = open_image(path).convert("RGB")
    if size is not None and img.size != size:
        img = img.resize(size, Image.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def read_rgba(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """``[H, W, 4]`` float32 RGBA in [0, 1] (alpha 1 where the file has none)."""
    img = open_image(path).convert("RGBA")
    if size is not None and img.size != size:
        img = img.resize(size, Image.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def image_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` of an image file without decoding all of it."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise SceneError("image file not found", path) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SceneError(f"cannot read image ({exc})", path, "re-export it as PNG or JPEG") from None


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Binary mask ``[H, W]`` bool at ``size=(W, H)``.

    3D-OVS convention: the file is converted to grey and only the value 255
    counts; a transparent pixel (alpha 0) is background. A mask larger than
    ``size`` with the same aspect ratio (the full-resolution annotation of a
    downscaled image) is resized with NEAREST; any other size is an error.
    """
    img = open_image(path)
    transparent = None
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        transparent = alpha == 0
    grey = img.convert("L")
    if grey.size != size:
        w, h = grey.size
        same_aspect = abs(w / h - size[0] / size[1]) <= 0.01 * size[0] / size[1]
        if not (same_aspect and w >= size[0]):
            raise SceneError(
                f"mask is {w}x{h} but the image it annotates is {size[0]}x{size[1]}", path,
                "masks must have the image's size, or its full-resolution size with the same aspect ratio")
        grey = grey.resize(size, Image.NEAREST)
        if transparent is not None:
            transparent = np.asarray(Image.fromarray(transparent).resize(size, Image.NEAREST))
    mask = np.asarray(grey) == 255
    if transparent is not None:
        mask &= ~transparent
    return mask


def write_png(path: Path, array: np.ndarray) -> None:
    """Write ``[H, W]`` or ``[H, W, 3|4]`` uint8 (or float in [0, 1]) as PNG."""
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    from laser_gs.atomic import atomic_open

    with atomic_open(path, "wb") as fh:
        Image.fromarray(array).save(fh, format="PNG")
