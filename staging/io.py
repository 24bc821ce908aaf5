"""The one place images enter and leave the library.

Every other module may assume the conventions of :mod:`staging`: an **image** is an RGB
``uint8`` array ``(H, W, 3)``, a **mask** a ``bool`` array ``(H, W)``, and a **probability**
or **alpha** map a ``float32`` array ``(H, W)`` in ``[0, 1]``. This module is where those
promises are made good, once: whatever arrives (a path, bytes, an upload's file object, a PIL
image or a numpy array, in any pixel mode PIL can decode) leaves as that RGB array, or the
call raises :class:`~staging.errors.ImageLoadError` with a message the user can act on.
Nothing from PIL (``UnidentifiedImageError``, ``OSError``, ``SyntaxError`` ...) escapes.

Decisions worth knowing:

* EXIF orientation is applied, so a phone photo is upright before anyone looks at it.
* Transparency is composited onto **white** for the RGB result (catalog photos are shot on
  white, and white is what a cutout tool shows). :func:`load_image_rgba` additionally returns
  the alpha when it carries information.
* 16-bit data is *scaled* to 8 bits (``round(v / 257)``), never clipped; float data is taken
  to be in ``[0, 1]``.
* Animated files (GIF, WebP, APNG) give their first frame.
* Size is checked from the header, before any pixel is decoded (decompression bombs).
* Truncated files are errors: we never set ``ImageFile.LOAD_TRUNCATED_IMAGES``.
* Writes are atomic (temporary file + :func:`os.replace`), so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from staging.errors import ImageLoadError, StagingError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "list_images",
    "load_image",
    "load_image_rgba",
    "load_mask",
    "save_image",
    "save_mask",
    "to_pil",
]

DEFAULT_MAX_PIXELS = 60_000_000
"""Same default as :attr:`staging.settings.Settings.max_pixels` (``STAGING_MAX_PIXELS``)."""

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
"""What :func:`list_images` picks up (compared case-insensitively)."""

ImageSource = (
    str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray
)
"""Everything :func:`load_image` accepts."""

# EPS is decoded by running Ghostscript on the file: never do that for an untrusted upload.
_BLOCKED_FORMATS = frozenset({"EPS"})

_EXIF_ORIENTATION = 0x0112

_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)
"""What PIL's decoders raise on bad data (a corrupt header can surface as almost any of these)."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_image(src: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read ``src`` as an RGB ``uint8`` array ``(H, W, 3)``; transparency is put on white.

    ``src`` may be a path, ``bytes``/``bytearray``/``memoryview`` of an encoded file, a binary
    file object (not closed here), a :class:`PIL.Image.Image` or a numpy array (see
    :func:`load_image_rgba` for how arrays are interpreted). The result is always a new array
    the caller may modify.

    Raises:
        ImageLoadError: missing/unreadable file, not an image, corrupt or truncated data, an
            unsupported array, or more than ``max_pixels`` pixels.
    """
    rgb, _alpha = _load(src, max_pixels)
    return rgb


def load_image_rgba(
    src: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray | None]:
    """Like :func:`load_image`, plus the alpha channel when it is real.

    Returns ``(rgb, alpha)``: ``rgb`` is exactly what :func:`load_image` returns (colour
    composited on white, so fully transparent pixels are white), and ``alpha`` is a
    ``float32`` ``(H, W)`` map in ``[0, 1]`` if the source has transparency that is not
    everywhere opaque (an alpha channel, a ``tRNS`` palette entry ...), else ``None``. An
    all-opaque alpha channel is reported as ``None`` so callers can test ``alpha is None``
    instead of scanning for it.

    Arrays are interpreted by dtype: ``uint8`` as is; ``uint16`` scaled by 1/257; ``bool`` as
    0/255; floats as ``[0, 1]`` (clipped; NaN counts as 0); other integers as 8-bit when all
    values fit ``[0, 255]``, else as 16-bit when they fit ``[0, 65535]``. Shapes: ``(H, W)``
    and ``(H, W, 1)`` grey, ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA.
    """
    return _load(src, max_pixels)


def load_mask(
    src: ImageSource,
    size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask image as ``float32`` ``(H, W)`` in ``[0, 1]``.

    Masks come from other tools in every flavour: greyscale PNGs, RGB exports, or cutouts
    where the mask *is* the alpha channel. So the alpha is used when it is real (see
    :func:`load_image_rgba`), otherwise the luminance (ITU-R 601) of the image. A 2-D numpy
    array is taken at face value (bool → 0/1, float clipped to ``[0, 1]``, integers scaled like
    images) without quantising to 8 bits.

    ``size`` is ``(width, height)``, PIL order; when given and different, the mask is resized
    with bilinear interpolation (which keeps soft edges soft).
    """
    if isinstance(src, np.ndarray) and src.ndim == 2:
        _check_array_size(src, max_pixels)
        mask = _array_channel_to_unit_float(src)
    else:
        rgb, alpha = _load(src, max_pixels)
        if alpha is not None:
            mask = alpha
        elif _is_grey(rgb):
            mask = rgb[..., 0].astype(np.float32) / 255.0
        else:
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
            mask = (rgb.astype(np.float32) @ weights) / 255.0
    if size is not None:
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be a positive (width, height), not {size!r}")
        if (width, height) != (mask.shape[1], mask.shape[0]):
            resized = Image.fromarray(np.ascontiguousarray(mask, dtype=np.float32))  # mode F
            mask = np.asarray(resized.resize((width, height), Image.Resampling.BILINEAR))
    return np.clip(mask, 0.0, 1.0).astype(np.float32, copy=True)


def _load(src: Any, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The single implementation behind every loader: ``(rgb on white, real alpha or None)``."""
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, not {max_pixels}")
    if isinstance(src, np.ndarray):
        _check_array_size(src, max_pixels)
        rgb, alpha = _array_to_rgb_alpha(src)
    elif isinstance(src, Image.Image):
        rgb, alpha = _decode(src, max_pixels, label=_label_of_pil(src))
    else:
        with _open_pil(src, max_pixels) as (image, label):
            rgb, alpha = _decode(image, max_pixels, label)
    if alpha is not None and float(alpha.min()) >= 1.0:
        alpha = None  # an opaque alpha channel carries no information
    if alpha is not None:
        rgb = _composite_on_white(rgb, alpha)
    return rgb, alpha


@contextlib.contextmanager
def _open_pil(src: Any, max_pixels: int) -> Iterator[tuple[Image.Image, str]]:
    """Open ``src`` lazily (header only) and yield ``(image, label for messages)``.

    Files we open are closed on exit; a caller's file object is left open.
    """
    if isinstance(src, (str, os.PathLike)):
        path = Path(os.fspath(src))
        label = f"'{path}'"
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, after decoding
        except FileNotFoundError:
            raise ImageLoadError(f"No such file: '{path}'.") from None
        except IsADirectoryError:
            raise ImageLoadError(f"Cannot read {label}: it is a folder, not an image.") from None
        except PermissionError:
            raise ImageLoadError(f"Cannot read {label}: permission denied.") from None
        except OSError as exc:
            raise ImageLoadError(f"Cannot read {label}: {exc.strerror or exc}.") from None
        with fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise ImageLoadError(f"Cannot read {label}: the file is empty.")
            yield _pil_open(fh, label, max_pixels), label
        return

    if isinstance(src, (bytes, bytearray, memoryview)):
        label = "the image data"
        data = bytes(src)
        if not data:
            raise ImageLoadError("Cannot read the image data: it is empty (0 bytes).")
        yield _pil_open(io.BytesIO(data), label, max_pixels), label
        return

    if hasattr(src, "read"):
        name = getattr(src, "name", None)
        label = f"'{name}'" if isinstance(name, (str, os.PathLike)) else "the uploaded file"
        fh = src
        seekable = getattr(src, "seekable", None)
        if not (callable(seekable) and seekable()):
            # PIL needs to seek (it sniffs the header, then rewinds): buffer a pipe or socket.
            fh = io.BytesIO(src.read())
        start = fh.tell()
        first = fh.read(1)
        if not first:
            raise ImageLoadError(f"Cannot read {label}: it is empty (0 bytes).")
        fh.seek(start)
        yield _pil_open(fh, label, max_pixels), label
        return

    raise ImageLoadError(
        f"Cannot load an image from a value of type {type(src).__name__}: expected a file "
        "path, bytes, a binary file object, a PIL image or a numpy array."
    )


def _pil_open(fh: IO[bytes], label: str, max_pixels: int) -> Image.Image:
    """``Image.open`` with its failures turned into :class:`ImageLoadError`.

    PIL's own bomb check runs inside ``Image.open``; its warning is silenced because our check
    (in :func:`_decode`) is the one that decides, and its hard error (beyond twice
    ``Image.MAX_IMAGE_PIXELS``, about 179 MP) is reported in our words. That hard error also
    caps ``max_pixels``: allowing larger images needs ``PIL.Image.MAX_IMAGE_PIXELS`` raised
    too, a process-wide setting this module deliberately leaves alone.
    """
    Image.init()
    formats = [f for f in Image.ID if f not in _BLOCKED_FORMATS]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fh, formats=formats)
    except Image.DecompressionBombError as exc:
        # PIL does not tell us the size, only the pixel count in its message.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else None
        size = f"is {_megapixels(pixels)} megapixels" if pixels else "is too large"
        if pixels is None or pixels > max_pixels:
            limit = f"the {_megapixels(max_pixels)}-megapixel limit (STAGING_MAX_PIXELS)"
        else:
            limit = (
                f"Pillow's {_megapixels(2 * (Image.MAX_IMAGE_PIXELS or 0))}-megapixel "
                "decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS)"
            )
        raise ImageLoadError(f"Cannot read {label}: it {size}, over {limit}.") from None
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"Cannot read {label}: it is not an image file (or it is corrupt)."
        ) from None
    except _PIL_ERRORS as exc:  # recognised as an image, but the header is damaged
        detail = str(exc).rstrip(".") or type(exc).__name__
        raise ImageLoadError(
            f"Cannot read {label}: the image data is truncated or corrupt ({detail})."
        ) from None


def _label_of_pil(image: Image.Image) -> str:
    name = getattr(image, "filename", "") or ""
    return f"'{name}'" if name else "the image"


def _decode(
    image: Image.Image, max_pixels: int, label: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Size-check, decode, orient and convert one PIL image (the first frame if animated)."""
    width, height = image.size
    _check_pixels(width, height, max_pixels, label)
    # Animated files: Image.open is positioned on the first frame, and we decode only that one
    # (asking for n_frames would parse every frame of a possibly huge GIF).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError:
        _check_pixels(*image.size, max_pixels, label)  # e.g. an ICO whose largest icon is huge
        raise ImageLoadError(f"Cannot read {label}: image is too large to decode.") from None
    except _PIL_ERRORS as exc:
        detail = str(exc).rstrip(".") or type(exc).__name__
        raise ImageLoadError(
            f"Cannot read {label}: the image data is truncated or corrupt ({detail})."
        ) from None
    if image.size != (width, height):  # some formats only know their real size after load
        _check_pixels(*image.size, max_pixels, label)
    image = _exif_upright(image)
    try:
        return _pil_to_rgb_alpha(image)
    except ImageLoadError:
        raise
    except _PIL_ERRORS as exc:
        raise ImageLoadError(
            f"Cannot read {label}: unsupported pixel format {image.mode!r} ({exc})."
        ) from None


def _exif_upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a malformed EXIF block just means "as stored".

    Orientation is a nicety: a photo whose EXIF we cannot parse is still a valid photo, so any
    failure here keeps the pixels as they are instead of rejecting the file.
    """
    try:
        if image.getexif().get(_EXIF_ORIENTATION, 1) in (None, 1):
            return image  # the common case: no copy
        return ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - see docstring: never fatal
        return image


def _check_pixels(width: int, height: int, max_pixels: int, label: str) -> None:
    pixels = int(width) * int(height)
    if pixels > max_pixels:
        what = (
            f"is {width}x{height} = {_megapixels(pixels)} megapixels, over the "
            f"{_megapixels(max_pixels)}-megapixel limit (STAGING_MAX_PIXELS)."
        )
        named = label.startswith("'")
        raise ImageLoadError(f"Cannot read {label}: it {what}" if named else f"Image {what}")
    if pixels == 0:
        raise ImageLoadError(f"Cannot read {label}: the image is empty ({width}x{height}).")


def _megapixels(pixels: int) -> str:
    value = pixels / 1_000_000
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _check_array_size(array: np.ndarray, max_pixels: int) -> None:
    if array.ndim in (2, 3) and array.size:
        _check_pixels(array.shape[1], array.shape[0], max_pixels, "the image")


# --------------------------------------------------------------------------------------------
# Pixel modes and dtypes
# --------------------------------------------------------------------------------------------


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


def _array_to_rgb_alpha(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and convert a numpy image (see :func:`load_image_rgba` for the rules)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageLoadError(
            f"Cannot use an array of shape {array.shape} as an image: expected (H, W) grey, "
            "(H, W, 3) RGB or (H, W, 4) RGBA."
        )
    if array.size == 0:
        raise ImageLoadError(f"Cannot use an empty array of shape {array.shape} as an image.")
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


# --------------------------------------------------------------------------------------------
# Saving and conversion
# --------------------------------------------------------------------------------------------


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
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageLoadError(
            f"Cannot convert an array of shape {image.shape} to an image: expected (H, W), "
            "(H, W, 1), (H, W, 3) or (H, W, 4)."
        )
    if image.size == 0:
        raise ImageLoadError(f"Cannot convert an empty array of shape {image.shape} to an image.")
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


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike, *, fsync: bool = True, suffix: str | None = None
) -> Iterator[Path]:
    """A temporary sibling of ``target`` to write by name; renamed over ``target`` when the
    block ends without an error, deleted when it raises.

    The sibling is hidden (``.NAME.<random>.tmp``) and in the same folder, so the rename is
    atomic: readers, and a crash at any moment, see the old file or the new one, never half a
    file. ``fsync`` flushes the data to disk before the rename (a power cut then keeps the
    new file whole, too); caches that only lose a recompute skip it. ``suffix`` (``".mp4"``) is
    put last (``.STEM.<random>.tmp.mp4``), for writers that pick a format from the name.
    """
    target = Path(os.fspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    if suffix is not None:
        tmp = target.with_name(f".{target.stem}.{token}.tmp{suffix}")
    else:
        tmp = target.with_name(f".{target.name}.{token}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(target: str | os.PathLike, write: Any, *, fsync: bool = True) -> Path:
    """Run ``write(file)`` on a new binary file beside ``target``, then rename it into place
    (see :func:`atomic_path`). Returns ``target`` as a Path."""
    target = Path(os.fspath(target))
    with atomic_path(target, fsync=False) as tmp:
        # os.open with 0o666 lets the umask decide permissions, as for a normal new file
        # (tempfile.mkstemp would leave the result readable by its owner only).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(tmp, flags, 0o666), "wb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return target


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted, for batch commands.

    Matches :data:`IMAGE_EXTENSIONS` case-insensitively and skips hidden entries (names
    starting with ``.``), including everything inside hidden folders (``.git``, macOS ``._``
    resource forks, ``.ipynb_checkpoints``). Symlinked folders are not followed, so a link
    loop cannot hang a batch. A single image file is accepted and returned as a one-item list,
    so the CLI can take "a file or a folder".
    """
    root = Path(os.fspath(folder))
    if root.is_file():
        if root.suffix.lower() in IMAGE_EXTENSIONS:
            return [root]
        raise ImageLoadError(f"'{root}' is not an image file (expected one of {_ext_list()}).")
    if not root.is_dir():
        raise ImageLoadError(f"No such folder: '{root}'.")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if not recursive:
            dirnames[:] = []
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found)


def _ext_list() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))
