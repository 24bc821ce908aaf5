"""Where, and how big, the input product goes in a retrieved scene (paper §5.3, step 3).

The retrieved staged image already has a product of the same kind standing in the room. Its
mask tells us three things about the room at that spot that we cannot easily infer otherwise:

* **scale** — similar products are about the same real size, and the old product sits at the
  depth where the new one will; so the new product takes the old one's size. We match mask
  *areas* (robust when the two silhouettes have different aspect ratios, e.g. an armchair vs a
  stool) and then keep the height within ``height_tolerance`` of the old one's, because the
  height is what the eye checks against the room. The aspect ratio is never distorted;
* **horizontal position** — the centres of mass are aligned, as in the paper;
* **floor line** — the new product's lowest point goes on the old product's lowest point, so
  nothing floats above or sinks into the floor, whatever the two shapes look like.

The result is a :class:`Alignment` (a scale and an offset); :func:`warp_product` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from staging.errors import StagingError


@dataclass(frozen=True)
class Alignment:
    """A similarity transform without rotation: ``scene = scale * product + (dx, dy)``.

    Product coordinates are those of the product's alpha bounding-box crop (see
    :func:`crop_to_content`); ``box`` is the pasted product's box in the scene
    ``(x0, y0, x1, y1)`` (exclusive ends, may be fractional before rounding).
    """

    scale: float
    dx: float
    dy: float
    box: tuple[float, float, float, float]


def crop_to_content(
    rgb: np.ndarray, alpha: np.ndarray, threshold: float = 1 / 255
) -> tuple[np.ndarray, np.ndarray]:
    """The product's RGB and alpha cropped to the bounding box of ``alpha > threshold``."""
    ys = np.flatnonzero((alpha > threshold).any(axis=1))
    xs = np.flatnonzero((alpha > threshold).any(axis=0))
    if ys.size == 0:
        raise StagingError("The product mask is empty: there is no product to paste.")
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    return rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1]


def mask_geometry(mask: np.ndarray) -> tuple[float, float, float, tuple[int, int, int, int]]:
    """``(area, centre_x, centre_y, (x0, y0, x1, y1))`` of a bool or soft mask."""
    weights = mask.astype(np.float32)
    area = float(weights.sum())
    if area <= 0:
        raise StagingError("The mask is empty.")
    ys, xs = np.indices(weights.shape, dtype=np.float32)
    cx = float((xs * weights).sum() / area)
    cy = float((ys * weights).sum() / area)
    inside = weights > 0
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    return area, cx, cy, (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def align_product(
    product_alpha: np.ndarray,
    scene_mask: np.ndarray,
    height_tolerance: float = 0.2,
    max_fill: float = 0.95,
) -> Alignment:
    """Scale and place the product (its cropped ``product_alpha``) where ``scene_mask`` is.

    Args:
        product_alpha: the input product's alpha, cropped to its content (float32 or bool).
        scene_mask: the old product's mask in the scene (bool HxW, scene size).
        height_tolerance: the new height stays within ``(1 ± tolerance)`` of the old one's.
        max_fill: the product never exceeds this share of the scene's width or height.
    """
    # Geometry comes from the masks (alpha >= 0.5): a faint soft rim must not move the floor
    # line or change the height.
    new_area, new_cx, _, (_, my0, _, my1) = mask_geometry(product_alpha >= 0.5)
    old_area, old_cx, _, (ox0, oy0, ox1, oy1) = mask_geometry(scene_mask)
    ph, pw = product_alpha.shape
    sh, sw = scene_mask.shape
    old_h, new_h = oy1 - oy0, my1 - my0

    scale = float(np.sqrt(old_area / new_area))
    lo, hi = (1 - height_tolerance) * old_h / new_h, (1 + height_tolerance) * old_h / new_h
    scale = float(np.clip(scale, lo, hi))
    scale = min(scale, max_fill * sw / pw, max_fill * sh / ph)

    # Centre of mass over the old one's; bottom on the old floor line.
    dx = old_cx - scale * new_cx
    dy = oy1 - scale * my1
    # Keep the whole product inside the frame (move it; never squeeze it).
    dx = float(np.clip(dx, 0.0, sw - scale * pw))
    dy = float(np.clip(dy, 0.0, sh - scale * ph))
    return Alignment(scale, dx, dy, (dx, dy, dx + scale * pw, dy + scale * ph))


def warp_product(
    rgb: np.ndarray, alpha: np.ndarray, alignment: Alignment, scene_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The product's colours and alpha resampled into the scene's frame.

    Resampling uses premultiplied colour, so soft edges keep the product's own colours instead
    of picking up the black that lies outside the cutout (the classic dark halo). Returns
    ``(rgb float32 HxWx3 in 0..255, alpha float32 HxW)``.
    """
    h, w = scene_shape
    s = alignment.scale
    matrix = np.array([[s, 0.0, alignment.dx], [0.0, s, alignment.dy]], dtype=np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    a = alpha.astype(np.float32)
    premultiplied = rgb.astype(np.float32) * a[..., None]
    stacked = np.dstack([premultiplied, a])
    if s < 1:  # area filtering first (warpAffine's INTER_AREA is only bilinear), then place
        size = (max(1, round(a.shape[1] * s)), max(1, round(a.shape[0] * s)))
        stacked = cv2.resize(stacked, size, interpolation=cv2.INTER_AREA)
        sx, sy = size[0] / a.shape[1], size[1] / a.shape[0]
        matrix = np.array(
            [[s / sx, 0.0, alignment.dx], [0.0, s / sy, alignment.dy]], dtype=np.float64
        )
        interp = cv2.INTER_LINEAR
    warped = cv2.warpAffine(
        stacked,
        matrix,
        (w, h),
        flags=interp,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    out_alpha = np.clip(warped[..., 3], 0.0, 1.0)
    colour = warped[..., :3] / np.maximum(out_alpha, 1e-4)[..., None]
    return np.clip(colour, 0, 255), out_alpha
