"""How big a product is in a scene: from its real size and the camera, not from what it replaces.

Copy-paste used to give the new product the old one's size (paper §5.3). That holds for a
chair replacing a chair; a stool replacing a bed became bed-sized. A product's size in the
picture follows from its real width and the scene's scale where it stands:

* **real width** (cm): the catalog's ``size`` (``98x57 cm``: IKEA and most catalogs list the
  width first), else the median width of the catalog's products of that type, else a typical
  width for the kind of furniture (:data:`TYPICAL_WIDTH_CM`, shop-floor figures, not fitted);
* **pixels per cm** on the floor line ``y``: interior photographs are taken with a level camera
  at about eye height (verticals stay vertical), so the horizon is the frame's middle row and a
  floor point at row ``y`` lies at depth ``Z = f·H/(y − y_h)``; a width ``W`` there spans
  ``f·W/Z = W·(y − y_h)/H`` pixels, whatever the focal length. ``H`` is the camera height,
  :data:`CAMERA_HEIGHT_CM`. When the object being replaced has a known real width (the
  catalog row of a staged photo gives the ``size`` of the product it shows), its own pixel
  width calibrates the camera height instead (:func:`camera_height`): a room shot from low
  gets the larger products it should.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable

CAMERA_HEIGHT_CM = 130.0
"""Eye-level interior photography: a tripod at chest to eye height (110-160 cm)."""

HORIZON = 0.5
"""A level camera puts the horizon on the frame's middle row."""

# Typical front widths of furniture (cm), from common retail ranges; the first keyword found in
# a type name wins, so the specific names come before the general ones.
TYPICAL_WIDTH_CM: tuple[tuple[str, float], ...] = (
    ("bar stool", 45), ("footstool", 50), ("stool", 40), ("armchair", 80), ("high chair", 60),
    ("chair", 50), ("three-seat", 220), ("two-seat", 170), ("corner sofa", 250), ("sofa", 200),
    ("couch", 200), ("bench", 120), ("bunk bed", 100), ("bed", 160), ("nightstand", 45),
    ("bedside", 45), ("side table", 45), ("coffee table", 100), ("desk", 120),
    ("table", 140), ("chest of", 80), ("sideboard", 160), ("wardrobe", 100),
    ("bookcase", 80), ("shelving", 80), ("cabinet", 60), ("trolley", 50), ("floor lamp", 40),
    ("plant pot", 30), ("plant", 40), ("pouffe", 45), ("rug", 170),
)  # fmt: skip

_UNIT_CM = {"mm": 0.1, "cm": 1.0, "m": 100.0}


def width_from_size(size: str | None) -> float | None:
    """The width in cm of a catalog ``size`` text (``98x57 cm``, ``28 cm``, ``1.2 m``).

    The first dimension is the width; a list of variants (``161,221x88 cm``) gives its first.
    None for sizes that are no length (``Standard King``, ``1.5 l``).
    """
    if not size:
        return None
    match = re.fullmatch(r"\s*([\d.,x ]+?)\s*(mm|cm|m)\s*", size.strip())
    if match is None:
        return None
    first = re.match(r"\d+(?:\.\d+)?(?:,\d{1,2}(?![\d,]))?", match.group(1).strip())  # "1,5" = 1.5
    if first is None:
        return None
    value = float(first.group(0).replace(",", "."))
    return value * _UNIT_CM[match.group(2)] or None


def typical_width(product_type: str | None) -> float | None:
    """The typical width (cm) of a kind of furniture named in ``product_type``, if known."""
    if not product_type:
        return None
    name = product_type.lower()
    return next((cm for keyword, cm in TYPICAL_WIDTH_CM if keyword in name), None)


class SizePriors:
    """Real widths by product type: the catalog's own median per type, else typical widths."""

    def __init__(self, medians: dict[str, float] | None = None):
        self.medians = {k.lower(): v for k, v in (medians or {}).items()}

    @classmethod
    def from_catalog(cls, rows: Iterable[tuple[str, str]], min_count: int = 3) -> SizePriors:
        """From ``(type, size)`` pairs; a type needs ``min_count`` parsed sizes for a median."""
        widths: dict[str, list[float]] = {}
        for product_type, size in rows:
            width = width_from_size(size)
            if product_type and width:
                widths.setdefault(product_type.lower(), []).append(width)
        return cls({t: statistics.median(w) for t, w in widths.items() if len(w) >= min_count})

    def width(self, product_type: str | None, size: str | None = None) -> tuple[float, str] | None:
        """``(width_cm, where it came from)``: the size given, the type's catalog median, or
        the typical width of its kind; None when nothing is known."""
        if (cm := width_from_size(size)) is not None:
            return cm, "size"
        if product_type and product_type.lower() in self.medians:
            return self.medians[product_type.lower()], "catalog median of its type"
        if (cm := typical_width(product_type)) is not None:
            return cm, "typical width of its kind"
        return None


def pixels_per_cm(
    floor_y: float,
    image_height: int,
    horizon: float = HORIZON,
    camera_height_cm: float = CAMERA_HEIGHT_CM,
) -> float | None:
    """Pixels per cm of width at floor row ``floor_y`` of a level camera (module doc); None
    when the row is at or above the horizon (not a floor the product can stand on)."""
    below = floor_y - horizon * image_height
    return below / camera_height_cm if below > 0 else None


CAMERA_HEIGHT_RANGE_CM = (40.0, 300.0)
"""Camera heights a calibration may give: from a low shot to a high one. A result outside is no
level camera in a room (the object's mask includes other things, or its size is another
dimension), so the default is kept."""


def camera_height(
    width_px: float,
    width_cm: float,
    floor_y: float,
    image_height: int,
    horizon: float = HORIZON,
) -> float | None:
    """The level camera's height (cm) at which an object ``width_cm`` wide, standing on row
    ``floor_y``, spans ``width_px`` pixels: :func:`pixels_per_cm` solved for the height,
    ``H = W·(y − y_h)/w``. None when the object stands at or above the horizon or the height
    is outside :data:`CAMERA_HEIGHT_RANGE_CM`."""
    below = floor_y - horizon * image_height
    if below <= 0 or width_px <= 0 or width_cm <= 0:
        return None
    height = width_cm * below / width_px
    low, high = CAMERA_HEIGHT_RANGE_CM
    return height if low <= height <= high else None
