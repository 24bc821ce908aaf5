"""The inpainting interface: one small class per backend, one contract for all.

A backend fills the pixels of a *hole* (bool HxW mask, True = unknown) in an RGB uint8 image.
The contract every caller relies on is kept here, once, not in each backend:

* pixels outside the hole come back **bit-exact** (the backend's output is composited into a
  copy of the input, so a network that re-renders the whole frame cannot shift a colour);
* shapes and dtypes are validated with messages a user can act on;
* an empty hole returns a copy of the image without calling the backend;
* a hole that covers the whole image is an error: there is nothing to fill it from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from staging.errors import StagingError


class Inpainter(ABC):
    """An inpainting backend. Subclasses implement :meth:`fill` and set :attr:`name`."""

    name: str = "?"
    wants_layout: bool = False
    """Whether :meth:`fill_in_scene` uses a scene's layout (its other objects and surfaces):
    the caller computes them only for a backend that does."""

    def fill_in_scene(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        side: int,
        avoid: np.ndarray | None = None,
        surfaces: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fill a removed object's ``hole`` in a room scene (a copy-paste clean plate): by
        default inpainted at ``side`` pixels on the long side and scaled back up
        (:func:`inpaint_downscaled`); a backend with :attr:`wants_layout` also gets the
        scene's other objects (``avoid``) and its surfaces."""
        return inpaint_downscaled(self, image, hole, side)

    def inpaint(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """``image`` with the ``hole`` filled; every pixel outside the hole is unchanged.

        Args:
            image: RGB ``uint8`` array ``(H, W, 3)``.
            hole: ``(H, W)`` mask of the pixels to fill: bool, or 0/1 / 0/255 integers, or
                floats (``>= 0.5`` is hole).
        """
        image = check_image(image)
        hole = as_hole(hole, image.shape[:2])
        if not hole.any():
            return image.copy()
        if hole.all():
            raise StagingError(
                "The hole covers the whole image: there is no known pixel to inpaint from."
            )
        filled = self.fill(image, hole)
        if filled.shape != image.shape:
            raise StagingError(
                f"Inpainting backend {self.name!r} returned shape {filled.shape}, "
                f"expected {image.shape}."
            )
        if filled.dtype != np.uint8:
            filled = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
        out = image.copy()
        out[hole] = filled[hole]
        return out

    @abstractmethod
    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The backend's fill: RGB uint8 (H, W, 3), same shape as ``image``.

        Called only with a validated image and a bool hole that is neither empty nor full.
        Pixels outside the hole may be anything: :meth:`inpaint` keeps the original ones.
        """


def check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise StagingError(
            f"inpaint needs an RGB uint8 numpy array, not {type(image).__name__} "
            "(load files with staging.load_image)."
        )
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise StagingError(
            f"inpaint needs an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}."
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise StagingError("inpaint got an empty image.")
    return image


def as_hole(hole: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The hole as a bool (H, W) mask of the image's size, or a clear error."""
    hole = np.asarray(hole)
    if hole.ndim == 3 and hole.shape[2] == 1:
        hole = hole[..., 0]
    if hole.ndim != 2:
        raise StagingError(f"The hole must be a 2-D (H, W) mask, got shape {hole.shape}.")
    if hole.shape != tuple(shape):
        raise StagingError(
            f"The hole's shape {hole.shape} does not match the image's {tuple(shape)} (H, W)."
        )
    if hole.dtype == np.bool_:
        return hole
    if np.issubdtype(hole.dtype, np.integer):
        # 0/1 masks and 0/255 masks both work: half the maximum value is the threshold.
        top = 255 if hole.size and int(hole.max()) > 1 else 1
        return hole.astype(np.int64) * 2 >= top if top > 1 else hole != 0
    if np.issubdtype(hole.dtype, np.floating):
        return np.nan_to_num(hole) >= 0.5
    raise StagingError(f"The hole must be a bool, integer or float mask, not {hole.dtype}.")


def hole_bbox(hole: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of the hole's bounding box grown by ``margin``, clipped."""
    ys = np.flatnonzero(hole.any(axis=1))
    xs = np.flatnonzero(hole.any(axis=0))
    h, w = hole.shape
    return (
        max(0, int(ys[0]) - margin),
        min(h, int(ys[-1]) + 1 + margin),
        max(0, int(xs[0]) - margin),
        min(w, int(xs[-1]) + 1 + margin),
    )


def context_window(hole: np.ndarray, min_side: int = 512, context: float = 2.0):
    """``(y0, y1, x0, x1)``: a window around the hole for networks that run at a fixed size.

    A square of ``context`` times the hole's longer side (at least ``min_side``), centred on the
    hole and moved inside the image; smaller than that when the image is (then not square).
    """
    y0, y1, x0, x1 = hole_bbox(hole)
    h, w = hole.shape
    side = max(int(round(context * max(y1 - y0, x1 - x0))), min_side)

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        length = min(side, limit)
        start = int(round((lo + hi - length) / 2))
        start = min(max(start, 0), limit - length)
        return start, start + length

    ys = span(y0, y1, h)
    xs = span(x0, x1, w)
    return ys[0], ys[1], xs[0], xs[1]


def resize_to(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.resize with INTER_AREA when shrinking and INTER_CUBIC when enlarging."""
    shrink = width * height < array.shape[0] * array.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(array, (width, height), interpolation=interp)


def inpaint_downscaled(
    inpainter: Inpainter,
    image: np.ndarray,
    hole: np.ndarray,
    max_side: int = 512,
    grain: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Inpaint at most ``max_side`` pixels on the long side, then bring the fill back up.

    Filling a product-sized hole costs roughly the hole's area squared for structure-aware
    fills, and what goes into a background hole is low-frequency anyway (wall, floor, light),
    so working at 512 px gives the same look several times faster. The upsampled fill is a
    little soft next to a sharp photo; ``grain`` puts the photo's own fine detail back (see
    :func:`add_detail`), which hides the difference. Pixels outside the hole stay bit-exact.
    """
    image = check_image(image)
    hole = as_hole(hole, image.shape[:2])
    h, w = hole.shape
    factor = max_side / max(h, w)
    if not hole.any():
        return image.copy()
    if factor >= 1:
        fill = inpainter.inpaint(image, hole).astype(np.float32)
    else:
        small_size = (max(1, round(w * factor)), max(1, round(h * factor)))
        small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
        # A pixel is unknown at low resolution if any of its footprint is: never trust it.
        small_hole = (
            cv2.resize(hole.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) > 0
        )
        filled = inpainter.inpaint(small, small_hole)
        fill = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    if grain:
        fill = add_detail(image, hole, fill, seed=seed)
    out = image.copy()
    out[hole] = np.clip(np.rint(fill[hole]), 0, 255).astype(np.uint8)
    return out


def add_detail(
    image: np.ndarray, hole: np.ndarray, fill: np.ndarray, sigma: float = 2.0, seed: int = 0
) -> np.ndarray:
    """``fill`` (float32 HxWx3) with fine detail added inside the hole.

    A smooth fill reads as a blurred patch on a textured wall or floor. The detail layer
    (``image - blur(image)``) of a same-sized region beside the hole is copied in: rooms are
    horizontally structured, so the region just left or right of the hole usually has the same
    material at the same rows (wall texture beside wall, floorboards beside floorboards).
    Among the shifts whose source is fully known, the one whose smoothed colours best match
    the fill is used, without outliers far above the texture's own amplitude; with none,
    matched Gaussian grain. The detail fades in over a few pixels from the hole's edge so no
    seam is drawn.
    """
    sharp = image.astype(np.float32)
    detail = sharp - cv2.GaussianBlur(sharp, (0, 0), sigma)
    smooth = sharp - detail
    y0, y1, x0, x1 = hole_bbox(hole)
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    best, best_cost = None, np.inf
    gap = 4
    for dy, dx in (
        (0, -(x1 - x0 + gap)),
        (0, x1 - x0 + gap),
        (0, -2 * (x1 - x0 + gap)),
        (0, 2 * (x1 - x0 + gap)),
        (-(y1 - y0 + gap), 0),
        (y1 - y0 + gap, 0),
    ):
        sy, sx = ys + dy, xs + dx
        if sy.min() < 0 or sx.min() < 0 or sy.max() >= h or sx.max() >= w:
            continue
        if hole[sy, sx].any():
            continue
        cost = float(np.abs(smooth[sy, sx] - fill[ys, xs]).mean())
        if cost < best_cost:
            best, best_cost = (sy, sx), cost
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~hole
    # Texture level around the hole, robustly (median absolute detail): copied detail far
    # above it is dropped, so an edge of another object (a frame, a table leg) beside the hole
    # is not drawn into it, only the material's texture.
    level = 1.4826 * float(np.median(np.abs(detail[ring]))) if ring.any() else 0.0
    if best is not None:
        texture = np.zeros_like(fill)
        limit = 4.0 * level
        copied = detail[best]
        copied[np.abs(copied).max(axis=1) > limit] = 0.0  # an edge, not texture: leave it out
        texture[ys, xs] = copied
    else:
        noise = np.random.default_rng(seed).normal(0.0, 1.0, (h, w, 1)).astype(np.float32)
        texture = 0.7 * level * cv2.GaussianBlur(noise, (0, 0), 0.6)
        texture = np.repeat(texture[..., None] if texture.ndim == 2 else texture, 3, axis=2)
    depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    ramp = np.clip(depth / 4.0, 0.0, 1.0)[..., None]
    return fill + ramp * texture
