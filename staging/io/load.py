"""Loading: a path, bytes, a file object, a PIL image or an array in, an RGB ``uint8`` array
(and the alpha when it is real) out, or :class:`~staging.errors.ImageLoadError`.

The size is checked from the header before any pixel is decoded, EXIF orientation is applied,
animated files give their first frame, and nothing PIL raises escapes.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from staging.errors import ImageLoadError
from staging.io.pixels import (
    _array_channel_to_unit_float,
    _array_to_rgb_alpha,
    _composite_on_white,
    _is_grey,
    _pil_to_rgb_alpha,
)

DEFAULT_MAX_PIXELS = 60_000_000
"""Same default as :attr:`staging.settings.Settings.max_pixels` (``STAGING_MAX_PIXELS``)."""

ImageSource = (
    str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray
)
"""Everything :func:`load_image` accepts."""

# EPS is decoded by running Ghostscript on the file: never do that for an untrusted upload.
_BLOCKED_FORMATS = frozenset({"EPS"})

_EXIF_ORIENTATION = 0x0112

_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)
"""What PIL's decoders raise on bad data (a corrupt header can surface as almost any of these)."""


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
