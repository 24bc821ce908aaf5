"""``exemplar``: fill a hole with real texture copied from the same rows of the same surface.

Diffusion fills (``structure``, Telea) are smooth: on planks, tiles, decking, rugs and patterned
walls they leave the smear a viewer spots at once. Copying pixels keeps the texture, but a
general patch search (PatchMatch) copies whatever matches best, including other objects, and
costs tens of seconds at 1024 px (measured: BENCHMARKS.md). This fill is a constrained shift
map (one offset per hole part, as in the statistics-of-offsets methods of He & Sun 2012, with
a single offset instead of an MRF over several):

* the offset is **horizontal**: a row of a floor seen from a level camera is one depth, so
  texture copied along it keeps its scale and perspective, and horizontal lines (skirting
  boards, plank joints, the wall/floor edge) continue exactly;
* the hole is split by **surface** (wall above the wall/floor line, floor below, when the scene
  analysis found that line) and each part copies only from its own surface, never from the
  hole or from other objects (``avoid``);
* of the offsets whose source is clean, the one whose copy best continues a thin ring of known
  pixels around the part (least squared difference) wins, and the remaining difference along
  the ring is spread into the part (a membrane, as in seamless cloning), so no seam shows;
* a part with no clean source is left to the fallback backend (``structure``).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from staging.inpaint.base import Inpainter, inpaint_downscaled

RING = 6  # px of known pixels around a hole part that its copy must continue


def offset_fill(
    image: np.ndarray,
    hole: np.ndarray,
    avoid: np.ndarray | None = None,
    surfaces: np.ndarray | None = None,
    ring: int = RING,
) -> tuple[np.ndarray, np.ndarray]:
    """``(filled image, unfilled mask)``: each part of ``hole`` copied from the best horizontal
    offset on its own surface (see the module doc).

    Args:
        image: RGB uint8.
        hole: bool HxW, the pixels to fill.
        avoid: bool HxW, pixels never to copy from (other objects); the hole never is.
        surfaces: int HxW surface labels (0 wall, 1 floor) or None (one surface).
        ring: width of the ring of known pixels a copy must continue.
    """
    h, w = hole.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    blocked = hole.copy() if avoid is None else hole | avoid
    blocked = cv2.dilate(blocked.astype(np.uint8), kernel).astype(bool) | hole
    labels = np.zeros((h, w), np.int8) if surfaces is None else surfaces.astype(np.int8)
    out = image.astype(np.float32)
    unfilled = np.zeros_like(hole)
    for surface in np.unique(labels[hole]):
        on_surface = labels == surface
        count, parts = cv2.connectedComponents((hole & on_surface).astype(np.uint8), connectivity=8)
        for number in range(1, count):
            part = parts == number
            shifted = _best_shift(image, part, hole, on_surface, blocked, kernel)
            if shifted is None:
                unfilled |= part
                continue
            source, near = shifted
            out[part] = _seamless(image, source, part, near)[part]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), unfilled


def _best_shift(
    image: np.ndarray,
    part: np.ndarray,
    hole: np.ndarray,
    surface: np.ndarray,
    blocked: np.ndarray,
    kernel: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The image shifted by the best horizontal offset for ``part``, and the part's ring (its
    known neighbours on its own ``surface``); None when no offset has a clean source."""
    h, w = part.shape
    near = cv2.dilate(part.astype(np.uint8), kernel).astype(bool) & ~hole & surface
    blocked = blocked | ~surface
    rows = np.flatnonzero((part | near).any(axis=1))
    cols = np.flatnonzero((part | near).any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box_part, box_near = part[y0:y1, x0:x1], near[y0:y1, x0:x1]
    if not box_near.any():
        return None
    pixels = image[y0:y1, x0:x1].astype(np.float32)
    best: tuple[float, int] | None = None
    for dx in range(-x0, w - x1 + 1):
        if (box_part & blocked[y0:y1, x0 + dx : x1 + dx]).any():
            continue  # the copy would come from the hole, another object or another surface
        usable = box_near & ~hole[y0:y1, x0 + dx : x1 + dx]  # ring pixels with a known source
        if usable.sum() < 0.5 * box_near.sum():
            continue
        source = image[y0:y1, x0 + dx : x1 + dx].astype(np.float32)
        cost = float(((pixels[usable] - source[usable]) ** 2).mean())
        if best is None or cost < best[0]:
            best = (cost, dx)
    if best is None:
        return None
    dx = best[1]
    shifted = image.astype(np.float32)
    shifted[y0:y1, x0:x1] = image[y0:y1, x0 + dx : x1 + dx]
    return shifted, near


def _seamless(
    image: np.ndarray, source: np.ndarray, part: np.ndarray, near: np.ndarray
) -> np.ndarray:
    """``source`` in ``part`` plus the image-minus-source difference of the ring spread
    smoothly into the part (fast marching, per channel): the copy meets its surround without
    a step."""
    rows = np.flatnonzero((part | near).any(axis=1))
    cols = np.flatnonzero((part | near).any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box_part = part[y0:y1, x0:x1]
    unknown = (~near[y0:y1, x0:x1]).astype(np.uint8)  # only the ring's difference is known
    difference = image[y0:y1, x0:x1].astype(np.float32) - source[y0:y1, x0:x1]
    out = source.copy()
    for channel in range(3):
        spread = cv2.inpaint(
            np.ascontiguousarray(difference[..., channel]), unknown, 5, cv2.INPAINT_TELEA
        )
        out[y0:y1, x0:x1, channel][box_part] += spread[box_part]
    return out


class ExemplarInpainter(Inpainter):
    """:func:`offset_fill` over the whole image (one surface, nothing to avoid), the parts it
    cannot source from ``fallback``. Copy-paste passes the scene's surfaces and other
    objects instead (:meth:`fill_in_scene`)."""

    name = "exemplar"

    def __init__(self, fallback: Inpainter):
        self.fallback = fallback

    wants_layout = True

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return self.fill_scene(image, hole)

    def fill_in_scene(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        side: int,
        avoid: np.ndarray | None = None,
        surfaces: np.ndarray | None = None,
    ) -> np.ndarray:
        """Texture copied at full size from the hole's own surface, never from the scene's
        other objects; what has no source is filled by the fallback at ``side``."""
        return self.fill_scene(
            image, hole, avoid, surfaces,
            lambda rgb, rest: inpaint_downscaled(self.fallback, rgb, rest, side),
        )  # fmt: skip

    def fill_scene(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        avoid: np.ndarray | None = None,
        surfaces: np.ndarray | None = None,
        fallback: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Fill ``hole`` copying only from ``surfaces``' own label and never from ``avoid``;
        ``fallback(image, hole)`` (default: the fallback backend) fills what has no source."""
        filled, unfilled = offset_fill(image, hole, avoid, surfaces)
        if unfilled.any():
            filled = (fallback or self.fallback.inpaint)(filled, unfilled)
        return filled
