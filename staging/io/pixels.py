"""Pixel modes and dtypes: any PIL mode or numpy array to the library's RGB ``uint8`` image
and ``float32`` alpha, without losing range (16-bit data is scaled, never clipped).

These are the conversions behind :mod:`staging.io.load` and :mod:`staging.io.save`; the array
rules they implement are spelled out in :func:`staging.io.load_image_rgba`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageCms

from staging.errors import ImageLoadError


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        return True
    if "transparency" in image.info:
        return True
    return image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA"


def _pil_to_rgb_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert any PIL mode to ``(rgb uint8, alpha float32 | None)`` without losing range.

    PIL's own ``convert("L")`` *clips* 16-bit and float data, turning most 16-bit photos
    white, so those modes go through numpy and are scaled instead.
    """
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        array = np.asarray(image)
        if array.ndim != 2:
            raise ImageLoadError(f"Cannot read the image: unsupported pixel format {mode!r}.")
        if mode.startswith("I;16"):
            grey = _scale_16bit(array.astype(np.float64))
        elif mode == "F":
            grey = _float_to_uint8(array)
        else:  # "I" (32-bit): PIL uses it for 16-bit files, so its values are 16-bit scale
            grey = _int_to_uint8(array, assume_16bit=True)
        return _grey_to_rgb(grey), None
    if mode == "La":  # premultiplied grey+alpha: PIL cannot convert it, undo it by hand
        la = np.asarray(image).astype(np.float32)
        alpha = la[..., 1] / 255.0
        with np.errstate(divide="ignore", invalid="ignore"):
            grey = np.where(alpha > 0, la[..., 0] / np.maximum(alpha, 1e-12), 0.0)
        return _grey_to_rgb(_round_u8(grey)), alpha
    if mode == "LAB":
        return _lab_to_rgb(image), None
    if _has_transparency(image):
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0
    if mode in ("1", "L"):
        return _grey_to_rgb(np.asarray(image.convert("L"))), None
    # RGB, RGBX, CMYK (PIL already undid Adobe's inverted CMYK), YCbCr, HSV, P, ...
    return np.array(image.convert("RGB"), dtype=np.uint8), None


def _lab_to_rgb(image: Image.Image) -> np.ndarray:
    """CIE L*a*b* to sRGB: PIL converts it directly since 10.x; older ones need ImageCms."""
    try:
        return np.array(image.convert("RGB"), dtype=np.uint8)
    except ValueError:
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return np.array(ImageCms.applyTransform(image, transform), dtype=np.uint8)


def _image_shaped(array: np.ndarray, wrong_shape: str, empty: str) -> np.ndarray:
    """``array`` with a trailing single channel dropped, checked to be ``(H, W)``,
    ``(H, W, 3)`` or ``(H, W, 4)`` and not empty: the shapes every image array must have.

    The messages are the caller's words (reading an array is not exporting one), with
    ``{shape}`` filled in with the array's shape.
    """
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageLoadError(wrong_shape.format(shape=array.shape))
    if array.size == 0:
        raise ImageLoadError(empty.format(shape=array.shape))
    return array


def _array_to_rgb_alpha(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and convert a numpy image (see :func:`load_image_rgba` for the rules)."""
    array = _image_shaped(
        array,
        "Cannot use an array of shape {shape} as an image: expected (H, W) grey, "
        "(H, W, 3) RGB or (H, W, 4) RGBA.",
        "Cannot use an empty array of shape {shape} as an image.",
    )
    if array.dtype.kind == "f" and np.isnan(array).all():
        raise ImageLoadError("Cannot use the array as an image: every value is NaN.")
    u8 = _to_uint8(array)
    if u8.ndim == 2:
        return _grey_to_rgb(u8), None
    if u8.shape[2] == 3:
        return np.ascontiguousarray(u8), None
    alpha = _array_channel_to_unit_float(array[..., 3])
    return np.ascontiguousarray(u8[..., :3]), alpha


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Any supported dtype to ``uint8`` by the array rules; always a new array."""
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array.copy()
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype == np.uint16:
        return _scale_16bit(array.astype(np.float64))
    if kind in "iu":
        return _int_to_uint8(array, assume_16bit=False)
    if kind == "f":
        return _float_to_uint8(array)
    raise ImageLoadError(
        f"Cannot use an array of dtype {array.dtype} as an image: expected uint8, uint16, bool, "
        "another integer type, or float in [0, 1]."
    )


def _array_channel_to_unit_float(channel: np.ndarray) -> np.ndarray:
    """One channel (alpha or mask) to ``float32`` ``[0, 1]``, keeping float precision."""
    if channel.dtype.kind == "f":
        values = np.nan_to_num(channel.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(values, 0.0, 1.0)
    if channel.dtype.kind == "b":
        return channel.astype(np.float32)
    if channel.dtype == np.uint16:
        return channel.astype(np.float32) / 65535.0
    return _to_uint8(channel).astype(np.float32) / 255.0


def _int_to_uint8(array: np.ndarray, assume_16bit: bool) -> np.ndarray:
    """Integers: 8-bit if they fit ``[0, 255]`` (unless ``assume_16bit``), else 16-bit."""
    if array.size == 0:
        return array.astype(np.uint8)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 65535:
        raise ImageLoadError(
            f"Cannot use integer pixel values from {low} to {high} as an image: expected 0-255 "
            "(8-bit) or 0-65535 (16-bit)."
        )
    if high <= 255 and not assume_16bit:
        return array.astype(np.uint8)
    return _scale_16bit(array.astype(np.float64))


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0-65535 to 0-255 by ``round(v / 257)``: 65535 → 255, 32768 → 128, exact for v*257."""
    return _round_u8(values / 257.0)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in ``[0, 1]`` to 0-255; out-of-range values are clipped, NaN becomes 0."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return _round_u8(np.clip(values, 0.0, 1.0) * 255.0)


def _round_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(grey, dtype=np.uint8)[..., None], 3, axis=2)


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float32)
    return _round_u8(rgb.astype(np.float32) * a + 255.0 * (1.0 - a))
