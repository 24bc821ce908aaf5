"""Saving and conversion: arrays to PIL images, images and masks to files (atomically), and
the bounded working size big photos are shrunk to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from staging.errors import ImageLoadError, StagingError
from staging.io.atomic import atomic_write
from staging.io.pixels import _composite_on_white, _image_shaped, _pil_to_rgb_alpha, _to_uint8

_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def at_most(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``rgb`` (an image or a map, HxW[xC]) shrunk with the area filter so its long side is at
    most ``max_side``; returned as it is when already that small. Big photos are worked on at
    such a bounded size (scenes are analysed and filled at one, products segmented at one), and
    never enlarged."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    factor = max_side / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def to_pil(image: np.ndarray) -> Image.Image:
    """Wrap an array as a PIL image, choosing the mode from its shape.

    ``(H, W)`` and ``(H, W, 1)`` → ``L``; ``(H, W, 3)`` → ``RGB``; ``(H, W, 4)`` → ``RGBA``
    (alpha kept, not composited: this is how cutouts are exported). Values follow the array
    rules of :func:`load_image_rgba`, so a bool mask or a float ``[0, 1]`` probability map
    becomes a 0-255 ``L`` image.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"to_pil expects a numpy array, not {type(image).__name__}")
    image = _image_shaped(
        image,
        "Cannot convert an array of shape {shape} to an image: expected (H, W), "
        "(H, W, 1), (H, W, 3) or (H, W, 4).",
        "Cannot convert an empty array of shape {shape} to an image.",
    )
    # uint8 (H, W) / (H, W, 3) / (H, W, 4) map to L / RGB / RGBA by themselves.
    return Image.fromarray(np.ascontiguousarray(_to_uint8(image)))


def save_image(path: str | os.PathLike, image: np.ndarray | Image.Image, quality: int = 95) -> Path:
    """Write ``image`` to ``path`` atomically; the format comes from the extension.

    Supported: ``.png``, ``.jpg``/``.jpeg``, ``.webp``. Parent folders are created. The data
    goes to a temporary file in the same folder that is then renamed over ``path``
    (:func:`os.replace`), so readers — and a crash halfway — never see a partial file.
    JPEG has no alpha, so an RGBA image is composited on white for it; PNG and WebP keep it.
    ``quality`` applies to JPEG and WebP. Returns the path written.
    """
    target = Path(os.fspath(path))
    fmt = _SAVE_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise StagingError(
            f"Cannot save '{target}': unsupported extension {target.suffix or '(none)'!r}; use "
            ".png, .jpg, .jpeg or .webp."
        )
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        if pil.mode not in ("RGB", "L"):
            rgb, alpha = _pil_to_rgb_alpha(pil)
            pil = Image.fromarray(rgb if alpha is None else _composite_on_white(rgb, alpha))
        options = {"quality": int(quality)}
    elif fmt == "WEBP":
        options = {"quality": int(quality)}
    else:  # PNG: zlib level 1 writes big cut-outs much faster than Pillow's 6, a little larger
        options = {"compress_level": 1}
    atomic_write(target, lambda fh: pil.save(fh, format=fmt, **options))
    return target


def save_mask(path: str | os.PathLike, mask_or_prob: np.ndarray) -> Path:
    """Write a mask as an 8-bit greyscale image (use ``.png``: lossy formats smear edges).

    ``bool`` → 0/255; float probabilities → ``round(p * 255)`` (clipped to ``[0, 1]``);
    integer arrays are taken as 0-255 grey. Atomic, like :func:`save_image`. WebP masks are
    written lossless.
    """
    mask = np.asarray(mask_or_prob)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ImageLoadError(f"A mask must be a 2-D (H, W) array, not shape {mask.shape}.")
    pil = to_pil(mask)
    target = Path(os.fspath(path))
    if target.suffix.lower() == ".webp":
        atomic_write(target, lambda fh: pil.save(fh, format="WEBP", lossless=True))
        return target
    return save_image(target, pil)
