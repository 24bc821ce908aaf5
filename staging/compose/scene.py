"""What a staged scene offers the product that will replace its main object.

Computed once per scene (the engine caches it with the clean plate) from the scene and the
old object's mask:

* the object's mask (its largest part), bottom row (the **floor line**) and **support points**;
* the **floor/wall boundary** behind it: the dominant near-horizontal line in the columns left
  and right of the object, between its top and its floor line. The fill searches the floor for
  the floor and the wall for the wall, so a skirting board or a rug edge continues instead of
  smearing into the wall;
* the object's own **shadow** on the floor (pixels around its base darker than the floor
  further away) and from it the **light**: the shadow's darkness, its softness (how wide its
  edge fades), and the side the light comes from (a shadow falling right means light from the
  left). The new product's cast shadow copies all three, so it matches the other objects in the
  room.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from staging.compose.blend import DEFAULT_SOFTNESS, support_points
from staging.io import atomic_write

if TYPE_CHECKING:
    from staging.segment.parse import SceneParse


@dataclass
class SceneAnalysis:
    """One scene's replaceable object and its surroundings (see the module doc)."""

    mask: np.ndarray  # bool HxW, the object to replace
    objects: np.ndarray  # bool HxW, every object the segmenter (and a scene parser) found
    floor_y: int  # the object's lowest row
    support: list[tuple[int, int, int]]  # (x0, x1, y) per foot
    floor_line: tuple[float, float] | None  # wall/floor boundary y = a*x + b, if found
    shadow: np.ndarray  # bool HxW, the object's shadow on the floor
    shadow_strength: float  # 1 - shadow / lit floor luminance, 0 when none was found
    light_dx: float  # -1: light from the right ... +1: from the left (shadow falls right)
    shadow_softness: float = DEFAULT_SOFTNESS  # the shadow edge's blur sigma, share of its height
    category: str | None = None  # what the object is, when a scene parser named it

    @property
    def box(self) -> tuple[int, int, int, int]:
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

    def surfaces(self) -> np.ndarray | None:
        """int8 HxW: 0 above the floor/wall boundary (wall), 1 below (floor); None if unknown."""
        if self.floor_line is None:
            return None
        h, w = self.mask.shape
        a, b = self.floor_line
        ys, xs = np.indices((h, w), dtype=np.float32)
        return (ys >= a * xs + b).astype(np.int8)


ANALYSIS_VERSION = 3  # 2: shadow_softness; 3: category, objects from a scene parser
"""Bump when :func:`analyse_scene` changes what it computes: older cached analyses are misses."""


class SceneCache:
    """Scene analyses on disk (``<folder>/<key>.npz``), so a catalog's scenes are analysed once,
    when they are indexed, and ranking a query's candidates reads them instead of decoding and
    analysing every retrieved scene. The caller makes the key from the scene's and its mask's
    content and the working size; writes are atomic and a corrupt entry is a miss."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def get(self, key: str) -> SceneAnalysis | None:
        path = self.folder / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                shape = tuple(int(v) for v in data["shape"])
                masks = {
                    name: np.unpackbits(data[name])[: shape[0] * shape[1]].reshape(shape) > 0
                    for name in ("mask", "objects", "shadow")
                }
                line = data["floor_line"]
                return SceneAnalysis(
                    **masks,
                    floor_y=int(data["floor_y"]),
                    support=[(int(a), int(b), int(c)) for a, b, c in data["support"]],
                    floor_line=(float(line[0]), float(line[1])) if line.size else None,
                    shadow_strength=float(data["shadow_strength"]),
                    light_dx=float(data["light_dx"]),
                    shadow_softness=float(data["shadow_softness"]),
                    category=str(data["category"]) or None,
                )
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, analysis: SceneAnalysis) -> None:
        """Store an analysis; a full disk or a read-only cache only costs a recompute."""
        arrays = {
            "shape": np.array(analysis.mask.shape),
            "floor_y": np.array(analysis.floor_y),
            "support": np.array(analysis.support, np.int64).reshape(-1, 3),
            "floor_line": np.array(analysis.floor_line or (), np.float64),
            "shadow_strength": np.array(analysis.shadow_strength),
            "light_dx": np.array(analysis.light_dx),
            "shadow_softness": np.array(analysis.shadow_softness),
            "category": np.array(analysis.category or ""),
        } | {name: np.packbits(getattr(analysis, name)) for name in ("mask", "objects", "shadow")}
        with contextlib.suppress(OSError):  # no fsync: a lost entry only costs a recompute
            atomic_write(
                self.folder / f"{key}.npz", lambda out: np.savez(out, **arrays), fsync=False
            )


def main_object(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of ``mask`` (bool): a staged photo's mask can include a
    second, smaller object (a vase, a cushion); the product we replace is the biggest one."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        return mask.astype(bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def pick_object(objects: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """The connected part of ``objects`` (bool) that a click at ``point`` (x, y) means: the
    part under it, else the nearest part (a click just beside a thin chair leg still picks
    the chair). An empty ``objects`` gives an empty mask."""
    count, labels = cv2.connectedComponents(objects.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(objects.shape, bool)
    h, w = objects.shape
    x, y = int(np.clip(round(point[0]), 0, w - 1)), int(np.clip(round(point[1]), 0, h - 1))
    label = labels[y, x]
    if label == 0:
        ys, xs = np.nonzero(labels)
        nearest = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
        label = labels[ys[nearest], xs[nearest]]
    return labels == label


def boxed_object(objects: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The connected part of ``objects`` (bool) with the most area inside ``box`` (x0, y0,
    x1, y1), whole: a catalog row's box names the object, it does not cut it (a chair's leg
    sticking out of a tight box is still removed). Empty when no part reaches into the box."""
    count, labels = cv2.connectedComponents(objects.astype(np.uint8), connectivity=8)
    x0, y0, x1, y1 = box
    inside = labels[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
    areas = np.bincount(inside.ravel(), minlength=count)[1:]
    if count <= 1 or not areas.any():
        return np.zeros(objects.shape, bool)
    return labels == 1 + int(np.argmax(areas))


def floor_wall_line(
    rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[float, float] | None:
    """The wall/floor boundary beside the object as ``(a, b)`` of ``y = a*x + b``, or None.

    Edges (Canny) in a strip as wide as the object on each side, between the object's top
    and its floor line, are searched for long lines within 10° of horizontal (probabilistic
    Hough); the longest on each side that the other side agrees with (within 3 % of the
    height) wins. One side alone is accepted when the other is out of the frame.
    """
    x0, y0, x1, y1 = box
    h, w = mask.shape
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.2), 40, 120)
    edges[cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0] = 0
    width = x1 - x0
    lines = cv2.HoughLinesP(
        edges, 1, np.pi / 180, threshold=40, minLineLength=max(20, width // 4), maxLineGap=6
    )
    if lines is None:
        return None
    best: dict[str, tuple[float, float, float]] = {}
    for lx0, ly0, lx1, ly1 in lines.reshape(-1, 4).astype(float):
        if lx1 == lx0 or abs(ly1 - ly0) > np.tan(np.radians(10)) * abs(lx1 - lx0):
            continue
        mid_x, mid_y = (lx0 + lx1) / 2, (ly0 + ly1) / 2
        if not y0 <= mid_y < y1:
            continue
        if x0 - width <= mid_x < x0:
            side = "left"
        elif x1 <= mid_x < x1 + width:
            side = "right"
        else:
            continue
        a = (ly1 - ly0) / (lx1 - lx0)
        length = float(np.hypot(lx1 - lx0, ly1 - ly0))
        if side not in best or length > best[side][2]:
            best[side] = (a, mid_y - a * mid_x, length)
    if not best:
        return None
    if len(best) == 2:
        (al, bl, _), (ar, br, _) = best["left"], best["right"]
        centre = (x0 + x1) / 2
        if abs((al * centre + bl) - (ar * centre + br)) > 0.03 * h:
            return None
        return (al + ar) / 2, (bl + br) / 2
    side = next(iter(best))
    other_out = x0 - width < 0 if side == "right" else x1 + width > w
    return best[side][:2] if other_out else None


SOFTNESS_RANGE = (0.005, 0.1)
"""Softness a measurement may give: from a spotlit hard edge to an overcast one."""


def object_shadow(
    rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, float, float, float]:
    """``(shadow mask, strength, light_dx, softness)`` of the object's shadow on the floor.

    Measured in thin strips at the floor line (4 % of the object's height tall): the strip
    under and beside the object's base, against the floor a quarter of its width further out
    on each side. Strength is how much darker the strip by the object is than the floor
    further out; the light comes from the side whose strip is brighter. Only that strip can
    be shadow, so a dark rug or a striped floor elsewhere is never taken for one. Softness is
    read on the side the shadow falls to (:func:`edge_softness`); :data:`DEFAULT_SOFTNESS`
    when there is no shadow or its edge cannot be read.
    """
    x0, y0, x1, y1 = box
    h, w = mask.shape
    oh, ow = y1 - y0, x1 - x0
    empty = np.zeros((h, w), bool)
    top, bottom = max(0, y1 - max(2, int(0.04 * oh))), min(h, y1 + max(2, int(0.04 * oh)))
    near, far = max(2, ow // 4), max(4, ow // 2)
    free = ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)

    def strip(c0: int, c1: int) -> np.ndarray:
        region = np.zeros((h, w), bool)
        region[top:bottom, max(0, c0) : max(0, min(w, c1))] = True
        return region & free

    by_object = strip(x0 - near, x1 + near)
    left, right = strip(x0 - near, x0), strip(x1, x1 + near)
    outside = strip(x0 - far, x0 - near) | strip(x1 + near, x1 + far)
    if by_object.sum() < 20 or outside.sum() < 20:
        return empty, 0.0, 0.0, DEFAULT_SOFTNESS
    lit = float(np.median(lum[outside]))
    strength = float(np.clip(1 - np.median(lum[by_object]) / max(lit, 1.0), 0.0, 0.9))
    if strength < 0.05:
        return empty, 0.0, 0.0, DEFAULT_SOFTNESS
    light_dx = 0.0
    if left.sum() >= 10 and right.sum() >= 10:
        dark_left, dark_right = 1 - np.median(lum[left]) / lit, 1 - np.median(lum[right]) / lit
        light_dx = float(np.clip((dark_right - dark_left) / max(strength, 1e-3), -1, 1))
    # The side the shadow falls to, read outwards from the object's edge.
    rows = lum[top:bottom]
    free_rows = free[top:bottom]
    if light_dx >= 0:
        columns = range(x1, min(w, x1 + far))
    else:
        columns = range(x0 - 1, max(-1, x0 - far - 1), -1)
    profile = [
        1 - np.median(rows[free_rows[:, c], c]) / lit if free_rows[:, c].sum() >= 2 else np.nan
        for c in columns
    ]
    sigma = edge_softness(np.array(profile, np.float32))
    softness = DEFAULT_SOFTNESS if sigma is None else sigma / max(1, oh)
    softness = float(np.clip(softness, *SOFTNESS_RANGE))
    return by_object & (lum < 0.9 * lit), strength, light_dx, softness


def edge_softness(darkness: np.ndarray) -> float | None:
    """The blur sigma (pixels) of a shadow edge from its darkness profile, read outwards from
    the object: a Gaussian-blurred edge falls from 90 % to 10 % of its darkness over
    2.563 sigma. The profile is smoothed over 3 px; None when it does not fall (no edge in
    view: the shadow reaches past the strip, or the floor's own pattern dominates)."""
    valid = np.isfinite(darkness)
    if valid.sum() < 6:
        return None
    values = np.interp(np.arange(len(darkness)), np.flatnonzero(valid), darkness[valid])
    values = np.convolve(values, np.ones(3) / 3, mode="same")[1:-1]
    top = int(np.argmax(values[: max(1, len(values) // 3)]))
    peak, falling = float(values[top]), values[top:]
    if peak <= 0.05:
        return None

    def crossing(level: float) -> float | None:
        """Where the falling profile first goes below ``level`` (sub-pixel, linear)."""
        after = np.flatnonzero(falling < level)
        if after.size == 0 or after[0] == 0:
            return None
        i = int(after[0])
        return i - 1 + (falling[i - 1] - level) / (falling[i - 1] - falling[i])

    start, end = crossing(0.9 * peak), crossing(0.1 * peak)
    if start is None or end is None:
        return None
    sigma = (end - start) / 2.563
    return float(np.sqrt(max(sigma**2 - 2 / 3, 0.0)))  # less the 3 px smoothing's variance


def analyse_scene(
    rgb: np.ndarray,
    mask: np.ndarray,
    point: tuple[float, float] | None = None,
    box: tuple[int, int, int, int] | None = None,
    parse: SceneParse | None = None,
) -> SceneAnalysis:
    """The :class:`SceneAnalysis` of a scene (RGB uint8) whose objects are ``mask``; the one
    to replace is the part a user clicked at ``point`` (x, y), else the part a catalog row's
    ``box`` (x0, y0, x1, y1) names (:func:`boxed_object`), else the largest part. Raises
    ValueError when that leaves no object.

    With a scene ``parse`` (:mod:`staging.segment.parse`, at the scene's size) the scene's
    objects also include every piece of furniture it names, which the segmenter's salient
    mask misses, a click on one of those picks it, and the replaced object gets the parse's
    name for it (``category``)."""
    objects = mask.astype(bool)
    if parse is not None and parse.labels.shape != objects.shape:
        parse = parse.resized((objects.shape[1], objects.shape[0]))
    if point is not None:  # a click names the object more closely than a catalog's box
        clicked = None if parse is None else parse.thing_at(point, ignore=objects)
        mask = clicked if clicked is not None else pick_object(objects, point)
    elif box is not None:
        mask = boxed_object(objects, box)
    else:
        mask = main_object(objects)
    if not mask.any():
        raise ValueError("no object found" + (" inside the box" if box is not None else ""))
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    shadow, strength, light_dx, softness = object_shadow(rgb, mask, box)
    if parse is not None:
        objects = objects | parse.others(mask)
    return SceneAnalysis(
        mask=mask,
        objects=objects,
        floor_y=box[3] - 1,
        support=support_points(mask.astype(np.float32)),
        floor_line=floor_wall_line(rgb, mask, box),
        shadow=shadow,
        shadow_strength=strength,
        light_dx=light_dx,
        shadow_softness=softness,
        category=None if parse is None else parse.kind_of(mask),
    )
