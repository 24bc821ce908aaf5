"""Copy-paste staging of one product into one retrieved scene (paper §5.3, Figs. 5-6).

    scene + its object mask ──analyse──▶ SceneAnalysis (floor line, feet, shadow, light)
    SceneAnalysis + product ──place at real size──▶ Fit (rank scenes before inpainting any)
    scene ──remove (dilated mask + old shadow)──▶ inpaint ──▶ clean plate
    clean plate + product ──align──▶ cast + contact shadow, tone, grain ──▶ paste

:func:`clean_plate` and :func:`paste_product` are separate so a caller can inpaint a scene once
and paste many products into the same clean plate (batch staging of a catalog does exactly
that; the engine caches plates). The inpainter is passed in — any ``(rgb, hole) -> rgb``
function — so this module stays free of model loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from staging.compose.align import Alignment, mask_geometry, warp_product
from staging.compose.blend import (
    DEFAULT_SOFTNESS,
    cast_shadow,
    composite,
    contact_shadow,
    feather,
    match_grain,
    product_ssim,
)
from staging.compose.blend import harmonize as harmonize_colours  # harmonize= is a flag here
from staging.compose.scene import SceneAnalysis, main_object
from staging.errors import StagingError

__all__ = [
    "Pasted",
    "clean_plate",
    "main_object",
    "paste_product",
    "removal_hole",
    "scene_problem",
    "upscale_warning",
    "work_region",
]


@dataclass
class Pasted:
    """The result of pasting one product into one clean plate."""

    image: np.ndarray  # RGB uint8, the plate's size
    alpha: np.ndarray  # float32, the product's coverage in ``image``
    ssim: float  # product region against the (scaled) input product
    scores: dict[str, float] = field(default_factory=dict)


def removal_hole(scene_mask: np.ndarray, grow: float = 0.04, shadow: float = 0.06) -> np.ndarray:
    """The pixels to inpaint to remove the old product: its mask, grown, plus its shadow.

    The mask is dilated by ``grow`` of the product's size (segmentation edges are never exact,
    and a one-pixel rim of the old product is the most visible artefact copy-paste can make),
    and extended below the product's lowest band by ``shadow`` of its height, where its cast
    shadow lies on the floor.
    """
    mask = scene_mask.astype(bool)
    if not mask.any():
        raise StagingError("The scene's product mask is empty: nothing to remove.")
    _, _, _, (x0, y0, x1, y1) = mask_geometry(mask)
    size = max(x1 - x0, y1 - y0)
    radius = max(2, int(round(grow * size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    hole = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    drop = int(round(shadow * (y1 - y0)))
    if drop > 0:
        base = np.zeros_like(hole, dtype=np.uint8)
        bottom = int(np.flatnonzero(hole.any(axis=1))[-1]) + 1
        band_top = bottom - max(1, int(round(0.15 * (y1 - y0))))
        base[band_top:bottom] = hole[band_top:bottom]
        # Slide the footprint down by up to ``drop`` rows (a kernel anchored at its bottom).
        down = np.ones((drop + 1, 1), np.uint8)
        base = cv2.dilate(base, down, anchor=(0, drop)).astype(bool)
        hole |= base
    return hole


def clean_plate(
    scene: np.ndarray,
    analysis: SceneAnalysis,
    inpaint,
) -> np.ndarray:
    """The scene with its object and that object's shadow removed: ``inpaint(rgb, hole)``
    fills :func:`removal_hole` of the object, grown over the shadow found by the analysis."""
    hole = removal_hole(analysis.mask) | analysis.shadow
    return inpaint(scene, hole)


def paste_product(
    plate: np.ndarray,
    scene: SceneAnalysis,
    product_rgb: np.ndarray,
    product_alpha: np.ndarray,
    alignment: Alignment,
    shadow: bool = True,
    harmonize: bool = True,
    grain: bool = True,
    shadow_strength: float = 0.45,
) -> Pasted:
    """Paste the product (RGB + alpha, cropped to content) into ``plate`` as ``alignment``
    places it (see :func:`staging.compose.fit.fit_in_scene`).

    Args:
        plate: the scene with its old object removed (RGB uint8).
        scene: the scene's analysis: old mask, light direction and shadow darkness.
        product_rgb: the input product's decontaminated colours (uint8 HxWx3).
        product_alpha: its alpha (float32 HxW; a bool mask works too).
        shadow: contact shadow and ambient occlusion under every foot, and a cast shadow in
            the scene's light direction as dark as the old object's own (when it had one).
        harmonize: shift the product's colour a little towards the scene (bounded).
        grain: add the scene's noise level to the (cleaner) catalog shot.
    """
    h, w = plate.shape[:2]
    x0, y0, x1, y1 = work_region(alignment.box, (h, w), shadow, scene.shadow_softness)
    local = Alignment(
        alignment.scale, alignment.dx - x0, alignment.dy - y0,
        tuple(v - o for v, o in zip(alignment.box, (x0, y0, x0, y0), strict=True)),
    )  # fmt: skip
    colour, placed_alpha = warp_product(product_rgb, product_alpha, local, (y1 - y0, x1 - x0))
    placed_alpha = feather(placed_alpha)
    surround = plate[y0:y1, x0:x1]
    background = surround.astype(np.float32)
    if shadow:
        darkness = contact_shadow(placed_alpha, strength=shadow_strength)
        if scene.shadow_strength > 0:
            cast = cast_shadow(
                placed_alpha, scene.light_dx, scene.shadow_strength,
                softness=scene.shadow_softness,
            )  # fmt: skip
            darkness = 1 - (1 - darkness) * (1 - cast)
        background *= (1.0 - darkness * (1.0 - placed_alpha))[..., None]
    # The product's own pixels: its box and the ring harmonisation compares it with. Outside
    # it the alpha is 0 and the region is the (shadowed) background.
    region = np.clip(np.rint(background), 0, 255).astype(np.uint8)
    product = _grown_box(placed_alpha > 0, int(0.1 * np.sqrt((placed_alpha >= 0.5).sum())) + 3)
    reference, colour, placed = colour[product], colour[product], placed_alpha[product]
    if harmonize:
        colour = harmonize_colours(colour, placed, surround[product])
    if grain:
        colour = match_grain(colour, placed, plate)
    region[product] = composite(background[product], colour, placed)
    ssim = product_ssim(region[product], reference, placed)
    image = plate.copy()
    image[y0:y1, x0:x1] = region
    alpha = np.zeros((h, w), np.float32)
    alpha[y0:y1, x0:x1] = placed_alpha
    old_area, _, _, (_, oy0, _, oy1) = mask_geometry(scene.mask)
    new_mask = alpha >= 0.5
    _, _, _, (_, ny0, _, ny1) = mask_geometry(new_mask)
    scores = {
        "scale": alignment.scale,
        "area_ratio": float(new_mask.sum()) / old_area,
        "height_ratio": (ny1 - ny0) / max(1, oy1 - oy0),
        "floor_offset_px": float(ny1 - oy1),
    }
    return Pasted(image, alpha, ssim, scores)


def _grown_box(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The slices of ``mask``'s bounding box grown by ``pad`` (clipped); all of it if empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return slice(None), slice(None)
    h, w = mask.shape
    return (
        slice(max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad)),
        slice(max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)),
    )


def work_region(
    box: tuple[float, float, float, float],
    shape: tuple[int, int],
    shadow: bool,
    softness: float = DEFAULT_SOFTNESS,
) -> tuple[int, int, int, int]:
    """The part of the frame a paste can change: the product's ``box`` grown by what reaches
    past it, clipped to the frame ``shape`` (h, w). Every step of :func:`paste_product` works
    on this crop, so a small product in a large room costs little, and the result is the same
    as on the whole frame (tested; with grain the noise is drawn for the crop, at the same
    level). With shadows: a cast shadow sheared sideways by up to 0.45
    of the product's height and blurred by up to ``3 * softness`` of it (4 sigma), or the
    contact pool's blur (4 x 0.04 of its size); without: the harmonisation ring and the
    feathering."""
    x0, y0, x1, y1 = box
    size = max(x1 - x0, y1 - y0)
    reach = max(0.45 + 12 * softness, 0.16) if shadow else 0.15
    pad = int(np.ceil(reach * size)) + 8
    h, w = shape
    return (
        max(0, int(np.floor(x0)) - pad), max(0, int(np.floor(y0)) - pad),
        min(w, int(np.ceil(x1)) + pad), min(h, int(np.ceil(y1)) + pad),
    )  # fmt: skip


def upscale_warning(scale: float) -> str | None:
    """What to tell the user when the product is drawn larger than its photo (``scale`` > 1):
    enlarged pixels look soft beside the scene's, and no resampling can add the detail."""
    if scale <= 1.0 + 1e-3:
        return None
    return (
        f"the product photo is enlarged {scale:.1f}x to its size in this scene and may look "
        f"soft: a photo at least {scale:.1f}x larger keeps it sharp"
    )


def scene_problem(
    scene_mask: np.ndarray,
    product_aspect: float | None = None,
    min_area: float = 0.005,
    max_area: float = 0.5,
    min_floor: float = 0.65,
    max_aspect_change: float = 2.5,
) -> str | None:
    """Why a retrieved scene cannot take a pasted product, or None if it can.

    * a product under ``min_area`` of the frame is too small to stand in for the input;
    * over ``max_area`` there is too little room left to inpaint from;
    * a product whose lowest point is above ``min_floor`` of the frame's height hangs on a
      wall or sits on a shelf; a floor-standing product pasted there would float;
    * when the old product's height/width ratio and the new one's (``product_aspect``)
      differ by more than ``max_aspect_change`` times, the shapes do not match (a bed is
      no place for a stool): the paper aligns by shape as well as by centre of mass.
    """
    if not scene_mask.any():
        return "no product found in the scene"
    share = float(scene_mask.mean())
    if share < min_area:
        return f"its product covers only {share:.1%} of the frame"
    if share > max_area:
        return f"its product covers {share:.0%} of the frame, too little background is left"
    rows = np.flatnonzero(scene_mask.any(axis=1))
    cols = np.flatnonzero(scene_mask.any(axis=0))
    if rows[-1] + 1 < min_floor * scene_mask.shape[0]:
        return "its product does not stand on the floor (it would float)"
    if product_aspect is not None:
        aspect = (rows[-1] + 1 - rows[0]) / (cols[-1] + 1 - cols[0])
        change = max(aspect / product_aspect, product_aspect / aspect)
        if change > max_aspect_change:
            return f"its product's shape differs too much (aspect ratio {change:.1f}x)"
    return None
