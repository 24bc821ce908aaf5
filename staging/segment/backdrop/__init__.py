"""The ``backdrop`` segmentation backend: weights-free matting for product shots on plain or
near-plain backgrounds (``catalog``, its former name, is an accepted alias).

It needs no model. It explains the photo as a smooth studio background
(white, off-white, grey, gradient, vignette or pastel), darkened multiplicatively by soft
shadows, with the product in front of it:

1. **Background model.** A cubic polynomial surface per RGB channel is fitted robustly on a
   64 px thumbnail to the smooth region flooded from the frame, then refitted on every pixel
   that matches it; a residual correction (normalised convolution of the matching pixels'
   residuals) follows spotlights, sweeps and vignettes the polynomial cannot (enclosed
   pixels take part only where their mean offset is achromatic, like a spotlight's). A
   clipped white backdrop (the frame 255 in every channel) is not fitted at all: it is 255
   wherever it shows, and a fit would bend through a white product's shaded body.
2. **Evidence.** Against the background ``B`` each pixel is *background* (within the noise),
   *product* (a different chromaticity, brighter than ``B``, or much darker) or *shadow-like*
   (``I ~ k*B`` with ``k < 1``: darker, same chromaticity). Grey, black and silver products
   are shadow-like too, so that set is resolved spatially.
3. **Shadows versus grey products.** Marker-based watershed on the colour gradient: background
   markers are the pixels that match ``B``; product markers are the certain pixels plus
   *steps* (pixels next to the background that jump to nearly their full contrast at once: a
   product starts at an edge, a shadow fades in). The shadow-like pixels are then claimed by
   whichever side reaches them across the lower gradient, so a soft shadow joins the
   background and a grey product's smooth interior joins its sharp outline. Shadow-like
   regions walled off from the backdrop by *sharp* edges (an outline is a step, a shadow's
   penumbra is not) are product markers too, unless they read as a shadow seen through a hole.
3a. **Explicit shadow model.** On a 64 px thumbnail the darkening ``1 - I/B`` of the open
   backdrop is fitted as drop (offset, blurred copy of the silhouette), cast (squashed and
   sheared onto the floor from the base) and contact (band under the base) shadows: a small
   grid per family, closed-form least squares for every offset at once. The silhouette is
   the mask or, when the watershed let shadows into it, its marked core. A shadow-like
   region of the mask goes to the background when the model, with the region cut out of the
   silhouette, predicts its darkening pixel by pixel; shading it does not predict (a white
   or grey product's face) stays product.  A smooth region the model misses is a shadow
   too when its mean chromaticity is the backdrop's to within ~1.5 levels and a large
   share of it borders the open backdrop (a band on the floor, not a compact face).
3b. **Enclosed regions.** Regions the classifier left as background but that are enclosed by
   the product or its (gap-closed) sharp edges are filled when they do not look like the
   backdrop: a mean residual or fine texture beyond the open backdrop's, not explained by a
   smooth, neutral darkening no deeper than a shadow present nearby. This recovers white
   lamp shades, cabinet fronts and glass interiors while real holes (between chair legs,
   inside a ring, also under a drop shadow) stay background.
3c. **Outlined white bodies.** Darkened regions the backdrop claimed whose rim is mostly a
   sharp (gap-closed) outline and whose darkening the shadow model of 3a does not predict
   are product: the shaded body of a white bowl or cabinet door whose faint outline leaks
   (within the convex hull of the product and those walls: not its shadow's halo).
3e. **Attached penumbrae.** Shadow-like parts of the mask below the product's centre that the
   open backdrop reaches without crossing a sharp edge, and that are light where they meet
   it (a shadow fades in, a product starts at its outline), are shadows the watershed
   flooded from a base sitting in its own shadow (smooth: as fine-grained as the backdrop,
   or a steep ramp -- a thin, deep contact shadow -- that a 3x3 median passes).
3g. **Concavities under a sharp lid.** A large concavity of the mask's convex hull whose
   lid (where the hull closes it) runs along a sharp edge, that is not the backdrop itself
   and not a neutral darkening the shadow model predicts, is product: the bowl of a wine
   glass under its rim, a white side face whose far edge is too faint to wall it in
   (between chair legs or hanging chains the lid crosses open backdrop).
4. **Soft alpha.** In a narrow band around the binary boundary the alpha is the projection of
   ``I - B_local`` on ``F_local - B_local``, with both colours propagated from the confident
   interior and exterior by normalised convolution (the exterior includes the shadows, so
   shadowed floor next to the product gets alpha 0).
5. **Edge-aware decision.** A colour guided filter of that alpha (coefficients at half
   resolution) decides on which side of 0.5 the uncertain pixels fall, so the mask's outline
   follows the photo's colour edges instead of wandering with the per-pixel estimates; the
   projection alpha keeps its values wherever the side does not change.

Everything is vectorised numpy + OpenCV at a reduced working resolution (256 px) with the
alpha refined at full resolution.

**Status: a frozen fallback.** Its constants were tuned on procedural dev composites and do
not carry over to real photos as well as a pretrained network does (IS-Net; the figures are
in BENCHMARKS.md). So ``auto`` uses it only for plain-backdrop shots when no pretrained model
is on disk, and no new constant is tuned here. Steps whose removal cost next to nothing on
every dev set were removed; BENCHMARKS.md keeps that ablation and each remaining step's
measured gain.

Most of the remaining error lies within a few pixels of the true outline (thin legs, faint
white-on-white edges); the rest is mostly shadows attached to the product, white interiors
that read as backdrop (brightness- and colour-matched, a mirror's glass, a chair's shaded
seat, a steel bowl merged with its shadow) and glass.

The steps live in ``ops`` (shared array primitives), ``background`` (1), ``classify`` (2, 3,
3b), ``shadows`` (3a), ``repair`` (3c, 3e, 3g) and ``alpha`` (4, 5); :func:`_matte` below runs
them in order.

:meth:`BackdropSegmenter.background` returns the background *as seen behind the product,
shadows included* (the clean fit times the propagated shadow factor), which is what the
cutout needs to solve ``F = (I - (1 - a) B) / a`` at shadowed edges.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from staging.segment.backdrop.alpha import _guided_decision, _soft_alpha
from staging.segment.backdrop.background import (
    OPEN_FRAC,
    OPEN_MIN,
    _clipped_white,
    _eval_poly,
    _fit_background,
    _frame_ring,
    _neutral_parts,
    _noise_sigma,
    _open_backdrop,
    _refine_background,
)
from staging.segment.backdrop.classify import _classify, _fill_enclosed, _outline_edges
from staging.segment.backdrop.ops import _fit_size, _highpass, _max3, _resize
from staging.segment.backdrop.repair import _fill_lidded, _fill_outlined, _peel_penumbrae
from staging.segment.backdrop.shadows import _model_shadows
from staging.segment.base import Segmenter

WORK_SIDE = 256  # classification resolution (longer side)
FIT_SIDE = 64  # background-fit thumbnail (longer side)


class BackdropSegmenter(Segmenter):
    """Background-model matting for studio shots; no weights.

    Its results and mask-cache entries keep the label ``catalog`` (the backend's former name),
    so results, reports and caches written before the rename stay as they were."""

    name = "backdrop"
    cache_tag = "2"  # bumped when the matting's output changes (here: when steps were pruned)

    def __init__(self) -> None:
        # (key, (prob, background)) of the last image, as one tuple: the app shares one
        # segmenter between threads, and key and result must never come from two images.
        self._last: tuple[tuple, tuple[np.ndarray, np.ndarray]] | None = None

    # ------------------------------------------------------------------ public API

    def predict(self, image: np.ndarray) -> np.ndarray:
        return self._analyse(image)[0].copy()

    def background(self, image: np.ndarray) -> np.ndarray:
        """Background behind the product, soft shadows included (float32 HxWx3, 0..255)."""
        return self._analyse(image)[1].copy()

    # ------------------------------------------------------------------ internals

    def _analyse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = np.ascontiguousarray(image)
        key = (image.shape, image.dtype.str, zlib.crc32(image.data))
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        result = _matte(image)
        self._last = (key, result)
        return result


def _matte(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    H, W = image.shape[:2]
    img = image.astype(np.float32)

    # 1. background: robust polynomial on a thumbnail, plus a smooth residual correction
    #    interpolated from the background pixels (radial spotlights, sweeps, vignettes)
    fh, fw = _fit_size(H, W, FIT_SIDE)
    small = _resize(img, fw, fh)
    #    (sharp outlines, found first, wall the product's inside off from the fit: a bright
    #    or backdrop-coloured product must not feed the backdrop, nor halo around it)
    wh, ww = _fit_size(H, W, WORK_SIDE)
    work = _resize(img, ww, wh)
    grad = _max3(cv2.morphologyEx(work, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)))
    hp = _highpass(work)  # fine texture: one map shared by every step below
    edges = _outline_edges(work, grad, _noise_sigma(work, _frame_ring(wh, ww), hp=hp))
    open_s = _resize(_open_backdrop(edges).astype(np.float32), fw, fh) > OPEN_FRAC
    coef, sigma, degree, region = _fit_background(
        small, open_s.ravel() if open_s.sum() >= OPEN_MIN else None
    )
    poly_s = _eval_poly(coef, degree, fh, fw)
    # enclosed, edge-free pixels that match the fit (holes showing the backdrop) may steer
    # the residual correction too; a product's face that does not match may not
    inner = ~open_s & (_resize(edges.astype(np.float32), fw, fh) < 0.01)
    inner &= _max3(np.abs(small - poly_s)) < max(4.0 * sigma, 5.0)
    region = region | _neutral_parts(small, poly_s, inner)
    B_s = _refine_background(small, poly_s, sigma, region)

    # 2. evidence at working resolution
    B = _eval_poly(coef, degree, wh, ww) + _resize(B_s - poly_s, ww, wh).reshape(wh, ww, 3)
    B = np.clip(B, 1.0, 255.0)
    if _clipped_white(image):
        B = np.full_like(B, 255.0)
    sigma = _noise_sigma(work, _resize(region.astype(np.float32), ww, wh) > 0.5, hp=hp)
    mask, undecided = _classify(work, B, sigma, grad, edges, hp=hp)
    mask, explained, smodel = _model_shadows(work, B, mask, undecided, sigma, edges, hp=hp)
    mask = _fill_enclosed(work, B, mask, sigma, edges, keep=explained, hp=hp)
    # white bodies whose outline leaks, then soft shadows still attached under the product
    mask = _fill_outlined(work, B, mask, sigma, edges, smodel.pred_w, keep=explained)
    mask = _peel_penumbrae(work, B, mask, sigma, edges, hp=hp)
    mask = _fill_lidded(work, B, mask, sigma, edges, smodel.pred_w, keep=explained, hp=hp)

    # 3. soft alpha at full resolution
    alpha, seen = _soft_alpha(img, work, mask, B)
    # 5. edge-aware decision in the uncertain band
    return _guided_decision(image, alpha), seen


CatalogSegmenter = BackdropSegmenter  # the former name, kept as an alias
