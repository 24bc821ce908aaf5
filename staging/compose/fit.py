"""How well a product fits a retrieved scene, before any pixel is inpainted.

Retrieval similarity alone picked a bed for a stool. A candidate scene is ranked by a fit made
of parts, each in [0, 1], combined by their geometric mean (one part near zero sinks the scene,
whatever the others say; no weights to tune):

* ``similarity``: the retrieval score (cosine) of the scene's product to the input product;
* ``coverage``: how much of the old object the new one, placed at its real size, covers. What
  is not covered must be inpainted, and every inpainted pixel is a chance to look fake. Below
  :data:`MIN_COVERAGE`, when what is left to fill exceeds :data:`MAX_FILL_SHARE` of the frame,
  or when the old object is not of the product's kind, the old object is kept and the product
  is *inserted* instead (mode ``insert``: feet on the free floor between the old object's
  floor line and the camera, nothing inpainted); the part is then left out;
* ``scale``: 1 when the product fits the frame at its real size; the factor it had to shrink by
  when it did not (a wardrobe under a low camera);
* ``free_floor`` (insert only; under one half the scene is skipped: the product would stand
  mostly inside other furniture): the share of the product not overlapping other objects that
  stand at its depth or nearer (the segmenter's, and every piece of furniture a scene parser
  names: :mod:`staging.segment.parse`). Under a level camera an object standing nearer touches
  the floor lower in the frame, so one whose lowest row is above the product's back feet is
  behind it (a wall cabinet, a bookcase at the back) and the product may stand in front of it.
  The kept old object is one of these obstacles, never free floor;
* ``category``: 1 when the scene's object is of the product's kind, 0.5 when it is not; left
  out when either is unknown (the scene's kind comes from its catalog row, the catalog's shots
  of it or its items list (:mod:`staging.catalog.scenes`), else a scene parser);
* ``room`` (when the catalog says the scene's room type): how typical the product's kind is for
  it, from the catalog's own rooms (:meth:`staging.catalog.scenes.CatalogScenes.room_fit`).

Only an object of the product's own kind is replaced. An object of another kind, or of a kind
nobody knows, is an obstacle: the product is inserted where it covers it least (a sofa is not
put over a bed). When the product's kind itself is unknown the paper's rule stands (replace).

:func:`fit_in_scene` gives the placement too: real width × the scene's pixels per cm at the
old object's floor line (see :mod:`staging.compose.scale`), centred on the old object, feet on
its floor line. Without a real width it falls back to the paper's rule (the old object's size).
When the old object's own real width is known, its pixel width calibrates the camera height
(:func:`staging.compose.scale.camera_height`) and the fit reports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from staging.compose.align import Alignment, align_product, mask_geometry
from staging.compose.blend import support_points
from staging.compose.scale import CAMERA_HEIGHT_CM, camera_height, pixels_per_cm
from staging.compose.scene import SceneAnalysis
from staging.errors import StagingError

MIN_COVERAGE = 0.6
"""Replace the old object only when the product covers this much of it: a fill of more than
the rest of an object looks smeared with every classical inpainter (seen on the dev rooms)."""
MAX_FILL_SHARE = 0.15
"""...and only when what stays to be filled (the old object less the product over it) is at
most this share of the frame. Set from what was seen before, not fitted: on the dev rooms'
clean plates, removal holes of 20-30 % of the frame came out smeared and streaked, those of
1-15 % were the ones worth comparing fills on (BENCHMARKS.md, copy-paste), and a large fill
is what the eye and the realism features see first. Above it the old object is kept."""


@dataclass
class Fit:
    """A product's placement in a scene and how well it fits there."""

    alignment: Alignment
    parts: dict[str, float] = field(default_factory=dict)
    mode: str = "replace"  # replace: the old object is removed; insert: placed in front of it
    problem: str | None = None  # why the scene cannot take the product at all
    camera_height_cm: float | None = None  # calibrated on the old object; None: the default

    @property
    def score(self) -> float:
        if self.problem is not None or not self.parts:
            return 0.0
        values = np.clip(np.array(list(self.parts.values()), np.float64), 1e-6, 1.0)
        return float(np.exp(np.log(values).mean()))


KIND_SYNONYMS = (
    {"sofa", "couch", "settee"},
    {"chest", "dresser"},
    {"bookcase", "bookshelf", "shelving"},
    {"wardrobe", "closet"},
    {"ottoman", "footstool", "pouffe"},
    {"buffet", "sideboard"},
    {"cabinet", "cupboard"},
    {"cradle", "crib", "cot"},
)
"""Words catalogs and a scene parser's classes (ADE20K's) use for the same kind of furniture."""
LINKING_WORDS = frozenset({"of", "with", "and", "for", "the", "a", "w", "in", "on"})
"""Words two kinds may share without being alike (``Chest of drawers``/``Piece of art``)."""


def _kind_words(text: str) -> set[str]:
    """The words of a kind's name (a final plural s dropped), less linking words, with their
    synonyms."""
    words = set(re.findall(r"[a-z]+", text.lower().rstrip("s"))) - LINKING_WORDS
    return words.union(*(group for group in KIND_SYNONYMS if words & group))


def same_kind(product_type: str | None, scene_category: str | None) -> float | None:
    """1.0 when the two names share a word or a synonym (``Chair``/``Folding chair``,
    ``Couch``/``sofa``, ``Chest of 3 drawers``/``chest of drawers``), 0.5 when they do not,
    None when either is unknown. Linking words (``of``, ``with``) do not count."""
    if not product_type or not scene_category:
        return None
    return 1.0 if _kind_words(product_type) & _kind_words(scene_category) else 0.5


def fit_in_scene(
    product_alpha: np.ndarray,
    scene: SceneAnalysis,
    width_cm: float | None = None,
    similarity: float | None = None,
    product_type: str | None = None,
    scene_category: str | None = None,
    object_width_cm: float | None = None,
    margin: float = 0.02,
    room_fit: float | None = None,
) -> Fit:
    """Where the product (its alpha cropped to content) goes in ``scene``, and its :class:`Fit`.

    Args:
        width_cm: the product's real width; None falls back to the old object's size.
        similarity: the retrieval score of this scene.
        object_width_cm: the real width of the scene's object, when its catalog row says.
        margin: the product's top stays this share of the height below the frame's top.
        room_fit: how typical the product's kind is for the scene's room type (the ``room``
            part), when known.
    """
    inside = product_alpha >= 0.5
    _, new_cx, _, (nx0, ny0, nx1, ny1) = mask_geometry(inside)
    old_area, old_cx, _, (ox0, oy0, ox1, oy1) = mask_geometry(scene.mask)
    sh, sw = scene.mask.shape
    ph, pw = product_alpha.shape
    parts: dict[str, float] = {}
    if similarity is not None:
        parts["similarity"] = float(np.clip(similarity, 0.0, 1.0))
    if (kind := same_kind(product_type, scene_category)) is not None:
        parts["category"] = kind
    if room_fit is not None:
        parts["room"] = float(room_fit)
    # Replace only an object of the product's kind; with the product's kind unknown, the paper.
    replaceable = product_type is None or kind == 1.0
    calibrated = None
    if object_width_cm is not None and width_cm is not None:  # only real widths use it
        calibrated = camera_height(ox1 - ox0, object_width_cm, oy1, sh)
    camera = calibrated or CAMERA_HEIGHT_CM

    def at_real_size(floor: float, centre: float = old_cx) -> tuple[Alignment, float] | None:
        """The placement with feet on row ``floor``, and how much it shrank to fit (1: none)."""
        ppcm = pixels_per_cm(floor, sh, camera_height_cm=camera)
        if width_cm is None or ppcm is None:
            return None
        real = width_cm * ppcm / (nx1 - nx0)
        # The whole product inside the frame: below its top margin, within its width.
        fits = min((floor - margin * sh) / (ny1 - ny0), (1 - 2 * margin) * sw / pw)
        scale = min(real, fits)
        dx = float(np.clip(centre - scale * new_cx, 0.0, sw - scale * pw))
        dy = floor - scale * ny1
        return Alignment(scale, dx, dy, (dx, dy, dx + scale * pw, dy + scale * ph)), scale / real

    replaced = at_real_size(oy1)
    alignment = replaced[0] if replaced else align_product(product_alpha, scene.mask)
    placed = _placed(inside, alignment, (sh, sw))
    coverage = float((placed & scene.mask).sum() / old_area)
    fill_share = float((scene.mask & ~placed).sum() / (sh * sw))  # what the fill must make
    small_fill = coverage >= MIN_COVERAGE and fill_share <= MAX_FILL_SHARE
    if (small_fill and replaceable) or replaced is None:
        parts["coverage"] = coverage
        if replaced is not None:
            parts["scale"] = float(replaced[1])
        return Fit(alignment, parts, camera_height_cm=calibrated)
    # Insert in front, on free floor: feet between the old object's floor line and the frame's
    # foot, where the product overlaps the scene's other objects least (on ties: halfway to
    # the frame's foot, on the old object's centre line).
    # Only what stands at the product's depth or nearer collides with it: under a level camera
    # an object standing nearer touches the floor lower in the frame. The product's own depth
    # is its footprint as photographed, from its front feet to its back feet.
    count, parts_of, stats, _ = cv2.connectedComponentsWithStats(
        (scene.objects | scene.mask).astype(np.uint8), connectivity=8
    )
    stands_at = stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]  # row below each part
    feet = support_points(inside.astype(np.float32))
    footprint = (ny1 - 1 - min(y for _, _, y in feet)) if feet else 0  # ny1: exclusive
    best: tuple[float, tuple[Alignment, float]] | None = None
    for t in (0.5, 0.25, 0.75, 1.0):
        floor = oy1 + t * (sh * (1 - margin) - oy1)
        for shift in (0.0, -0.5, 0.5, -1.0, 1.0):
            placed = at_real_size(floor, old_cx + shift * (ox1 - ox0))
            if placed is None:
                continue
            mask = _placed(inside, placed[0], (sh, sw))
            hits = np.bincount(parts_of[mask], minlength=count)
            colliding = stands_at >= floor - placed[0].scale * footprint
            colliding[0] = False  # not an object
            overlap = float(hits[colliding].sum() / max(1, mask.sum()))
            if best is None or overlap < best[0] - 0.01:
                best = (overlap, placed)
    if best is None:  # the old object stands above the horizon: no floor to use
        return Fit(align_product(product_alpha, scene.mask), parts, problem="no floor in view")
    parts["free_floor"] = 1.0 - best[0]
    parts["scale"] = float(best[1][1])
    if best[0] > 0.5:  # wherever it stands, most of it would be inside other furniture
        return Fit(best[1][0], parts, mode="insert", problem="no free floor for it")
    return Fit(best[1][0], parts, mode="insert", camera_height_cm=calibrated)


def adjust(
    alignment: Alignment,
    product_shape: tuple[int, int],
    feet: tuple[float, float] | None = None,
    scale: float = 1.0,
) -> Alignment:
    """``alignment`` moved and resized by hand: the product's feet (the middle of its box's
    bottom edge) go to ``feet`` (x, y in the scene; default: where they are) and its size is
    multiplied by ``scale``, about the feet, so it stays standing on the same floor line."""
    if not scale > 0:
        raise StagingError(f"scale must be positive, got {scale}.")
    ph, pw = product_shape
    x0, _, x1, y1 = alignment.box
    fx, fy = feet if feet is not None else ((x0 + x1) / 2, y1)
    s = alignment.scale * scale
    dx, dy = fx - s * pw / 2, fy - s * ph
    return Alignment(s, dx, dy, (dx, dy, dx + s * pw, dy + s * ph))


def _placed(inside: np.ndarray, alignment: Alignment, shape: tuple[int, int]) -> np.ndarray:
    """The product's mask (bool) placed in a frame of ``shape`` (nearest-neighbour)."""
    sh, sw = shape
    ph, pw = inside.shape
    placed = np.zeros((sh, sw), bool)
    x0, y0 = int(round(alignment.dx)), int(round(alignment.dy))
    small = cv2.resize(
        inside.astype(np.uint8),
        (max(1, round(pw * alignment.scale)), max(1, round(ph * alignment.scale))),
        interpolation=cv2.INTER_NEAREST,
    ).astype(bool)
    ys = slice(max(0, y0), max(0, min(sh, y0 + small.shape[0])))
    xs = slice(max(0, x0), max(0, min(sw, x0 + small.shape[1])))
    placed[ys, xs] = small[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return placed


# The former name, kept for callers outside this package; ``staging.compose.placement`` has the
# other ``place_product`` (now ``place_on_canvas``), which lays the product out on a canvas.
place_product = fit_in_scene
