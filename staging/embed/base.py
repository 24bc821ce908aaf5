"""The embedder interface and the product crop every embedder shares.

An embedder maps a product image (RGB ``uint8`` ``(H, W, 3)``) and, optionally, its product
mask (``bool`` ``(H, W)``) to a ``float32`` vector of unit L2 norm, so cosine similarity is a
dot product. As in the paper (Sec. 5.3: "for a given *segmented* product, retrieve top-k
similar products"), the product is embedded with its background removed: :func:`product_crop`
crops to the mask's bounding box plus a margin, pads to a square (aspect ratio is a cue, so it
is never stretched away) and paints every non-product pixel one neutral constant. Two photos of
the same product on different backgrounds therefore embed identically when their masks are
given.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

WHITE = (255, 255, 255)


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """``x / ||x||`` along ``axis`` as ``float32``; an all-zero vector stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32, copy=False)


def as_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Validate a mask for an image of ``shape`` (H, W): bool, or float/uint8 thresholded at half.

    An empty mask (no product pixel) is treated as "no mask": the whole image is used.
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != tuple(shape):
        raise ValueError(f"mask shape {mask.shape} does not match the image's {tuple(shape)}")
    if mask.dtype != bool:
        scale = 255.0 if mask.dtype == np.uint8 else 1.0
        mask = mask.astype(np.float32) >= 0.5 * scale
    return mask if mask.any() else None


@dataclass
class ProductCrop:
    """The product, cropped and squared, background painted with :attr:`fill`."""

    image: np.ndarray  # uint8 (S, S, 3)
    mask: np.ndarray  # bool (S, S); all True when no mask was given
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the product in the source image
    fill: tuple[int, int, int]


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of the True pixels."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def product_crop(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    size: int | None = None,
    margin: float = 0.05,
    fill: tuple[int, int, int] = WHITE,
    square: bool = True,
) -> ProductCrop:
    """Crop ``image`` to the product and remove its background.

    Args:
        image: RGB uint8 ``(H, W, 3)``.
        mask: product mask; None (or empty) means "the whole image is the product".
        size: if given, the square output is resized to ``size x size`` (area interpolation
            when shrinking); the mask is resized with nearest neighbour.
        margin: border added around the mask's bounding box, as a fraction of its longer side.
        fill: the neutral constant painted outside the mask and in the padding.
        square: pad the crop to a square, centred (keeps the aspect ratio for later resizing).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    mask = as_mask(mask, (h, w))
    if mask is None:
        box = (0, 0, w, h)
        crop = image.copy()
        crop_mask = np.ones((h, w), dtype=bool)
    else:
        x0, y0, x1, y1 = mask_box(mask)
        box = (x0, y0, x1, y1)
        crop = image[y0:y1, x0:x1].copy()
        crop_mask = mask[y0:y1, x0:x1].copy()
        crop[~crop_mask] = fill
    ch, cw = crop_mask.shape
    pad = int(round(margin * max(ch, cw)))
    side_h, side_w = ch + 2 * pad, cw + 2 * pad
    if square:
        side_h = side_w = max(side_h, side_w)
    top, left = (side_h - ch) // 2, (side_w - cw) // 2
    out = np.empty((side_h, side_w, 3), dtype=np.uint8)
    out[:] = np.asarray(fill, dtype=np.uint8)
    out[top : top + ch, left : left + cw] = crop
    out_mask = np.zeros((side_h, side_w), dtype=bool)
    out_mask[top : top + ch, left : left + cw] = crop_mask
    if size is not None and (side_h, side_w) != (size, size):
        interp = cv2.INTER_AREA if max(side_h, side_w) > size else cv2.INTER_LINEAR
        out = cv2.resize(out, (size, size), interpolation=interp)
        out_mask = cv2.resize(
            out_mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST
        ).astype(bool)
    return ProductCrop(out, out_mask, box, tuple(int(v) for v in fill))


class Embedder(ABC):  # noqa: B024 - subclasses implement either hook
    """An image embedder. Subclasses set :attr:`name` and :attr:`dim` and implement
    :meth:`_embed_one`, or :meth:`_embed_many` for batched inference (or override
    :meth:`embed_batch` when the vectors are made another way)."""

    name: str = "?"
    dim: int = 0
    version: int = 1
    """Bump when the vectors change for the same input (preprocessing, views, weights): an
    index records it, and mixing vectors of two versions is refused with a rebuild hint."""

    def embed(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Unit-norm ``float32`` vector of length :attr:`dim` for one product image."""
        return self.embed_batch([image], None if mask is None else [mask])[0]

    def embed_batch(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """``(N, dim)`` unit-norm ``float32`` embeddings; ``masks`` may hold None entries."""
        masks = _check_masks(images, masks)
        if not len(images):
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self._embed_many(images, masks))

    def _embed_many(self, images: Sequence[np.ndarray], masks: list) -> np.ndarray:
        """``(N, dim)`` vectors of ``images`` (at least one) and their checked ``masks``;
        :meth:`embed_batch` normalises them. One at a time through :meth:`_embed_one`, unless
        a subclass batches."""
        return np.stack([self._embed_one(img, m) for img, m in zip(images, masks, strict=True)])

    def _embed_one(self, image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _embed_one or embed_batch")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dim={self.dim}>"


def _check_masks(images: Sequence, masks: Sequence | None) -> list:
    if masks is None:
        return [None] * len(images)
    masks = list(masks)
    if len(masks) != len(images):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    return masks


__all__ = [
    "WHITE",
    "Embedder",
    "ProductCrop",
    "as_mask",
    "l2_normalize",
    "mask_box",
    "product_crop",
]
