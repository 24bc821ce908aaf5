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

The package is split by concern: :mod:`~staging.io.load` (reading), :mod:`~staging.io.pixels`
(pixel modes and dtypes), :mod:`~staging.io.save` (conversion and writing),
:mod:`~staging.io.atomic` (atomic writes) and :mod:`~staging.io.files` (listing folders). Import
from ``staging.io``: every public name is re-exported here.
"""

from staging.io.atomic import atomic_path, atomic_write
from staging.io.files import IMAGE_EXTENSIONS, list_images
from staging.io.load import DEFAULT_MAX_PIXELS, ImageSource, load_image, load_image_rgba, load_mask
from staging.io.save import at_most, save_image, save_mask, to_pil

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "at_most",
    "atomic_path",
    "atomic_write",
    "list_images",
    "load_image",
    "load_image_rgba",
    "load_mask",
    "save_image",
    "save_mask",
    "to_pil",
]
