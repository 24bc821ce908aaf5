"""The product cut out of its photo: the first step of every copy-paste pipeline.

A :class:`Cutout` is the product cropped to its content (colour and soft alpha) with the
segmentation backend that found it and its full-frame mask. :class:`Cutouts` makes them and
keeps the recent ones, keyed by the photo's and mask's content, so re-rendering a placement
(the user dragging the product around a scene) does not matte the product again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from staging.errors import StagingError
from staging.io import ImageSource
from staging.pipelines.cache import MB, MemoryCache, content_key, settled
from staging.segment.base import Segmentation
from staging.segment.cache import image_key


@dataclass(frozen=True)
class Cutout:
    """The product cropped to its content, and where it came from."""

    colour: np.ndarray  # RGB uint8, the crop
    alpha: np.ndarray  # float32 in [0, 1], the crop's alpha
    backend: str  # the segmentation backend ("mask" for a given mask)
    mask: np.ndarray  # bool, the product in the whole photo


def product_layer(
    segment: Callable[[np.ndarray, str | None], Segmentation],
    rgb: np.ndarray,
    mask: np.ndarray | ImageSource | None,
    backend: str | None,
    threshold: float,
    max_pixels: int | None,
) -> Segmentation:
    """The product's segmentation: ``segment(rgb, backend)``, or built from a given
    (corrected) mask, which must mark something at ``threshold``."""
    if mask is None:
        return segment(rgb, backend)
    from staging.io import load_mask

    size = (rgb.shape[1], rgb.shape[0])
    alpha = load_mask(mask, size=size, max_pixels=max_pixels)
    if not (alpha >= threshold).any():
        raise StagingError("The product mask is empty: mark the product before staging.")
    return Segmentation(rgb, alpha.astype(np.float32), "mask", threshold)


class Cutouts:
    """Cut-outs made by ``layer(rgb, mask, backend)`` (a :class:`Segmentation`), cached."""

    def __init__(
        self,
        layer: Callable[[np.ndarray, np.ndarray | ImageSource | None, str | None], Segmentation],
        max_bytes: int = 64 * MB,
    ):
        self.layer = layer
        self.cache = MemoryCache(max_bytes)

    def __call__(
        self, rgb: np.ndarray, mask: np.ndarray | ImageSource | None, backend: str | None
    ) -> Cutout:
        from staging.compose.align import crop_to_content

        def cut() -> Cutout:
            product = self.layer(rgb, mask, backend)
            if not product.mask.any():
                raise StagingError(
                    "No product was found in the image: draw its mask by hand (Product tab) "
                    "or pass mask=."
                )
            colour, alpha = crop_to_content(product.foreground, product.alpha)
            return Cutout(colour, alpha, product.backend, product.mask)

        mask = settled(mask, as_mask=True)
        key = (image_key(rgb), content_key(mask), backend or "")
        return self.cache.get(key, cut)
