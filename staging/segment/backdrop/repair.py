"""Steps 3c, 3e and 3g of the backdrop matting: regions the classifier put on the wrong side.

Outlined white bodies the backdrop claimed, attached penumbrae the watershed let into the
mask, and concavities under a sharp lid (a wine glass's bowl under its rim)."""

from __future__ import annotations

import cv2
import numpy as np

from staging.segment.backdrop.classify import FILL_TEX
from staging.segment.backdrop.ops import (
    REGION_CHROMA,
    _dilate,
    _dot,
    _erode,
    _highpass,
    _median,
    _median_residual,
    _neutral_limit,
    _region_means,
    _shadow_evidence,
)
from staging.segment.backdrop.shadows import SHADOW_DEPTH_MIN

OUTLINED_FRAC = 0.5  # share of a region's rim that must be (gap-closed) sharp outline
OUTLINED_CLOSE = 2  # extra px (working res) of gap closing for those walls
OUTLINED_MIN = 16  # px (working res): smaller leftovers are not judged
OUTLINED_DEPTH = 0.06  # mean darkening (fraction of B) beyond the shadow model's prediction


def _fill_outlined(
    work: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    pred: np.ndarray | None,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Darkened regions left out of the mask, walled in by a sharp outline and darker than
    the shadow model predicts there: the shaded body of a white product.

    A white bowl or cabinet door on a white backdrop reads as "shadow-like" (darker, same
    chromaticity), and its faint outline has gaps, so the watershed lets the backdrop claim
    its body and :func:`_fill_enclosed` never sees it enclosed. Two cues still tell it from
    a shadow: its rim is mostly a sharp outline (the edges, gaps closed a little more here;
    a shadow fades into the backdrop), and the fitted shadow model (``pred``, the darkening
    :func:`_model_shadows` predicts from the silhouette) does not account for its darkening,
    whereas the shadow in an opening between legs is walled in too but predicted.
    What a filled region spills beyond the convex hull of the product and its walls stays
    out: it keeps a white bowl's drop-shadow halo, joined to its body through the outline's
    gap, out of the mask (measured: BENCHMARKS.md, Weights-free `catalog` matting, "An
    outlined body stays within its outline").
    ``keep``: pixels already judged shadow, never filled. On the dev sets: a gain on the
    held-out val set (white bowls, cabinet doors), neutral on the tuning set (measured:
    BENCHMARKS.md, Design measurements once kept in docstrings).
    """
    product = mask >= 0.5
    diff = work - B
    bg0 = np.sqrt(_dot(diff, diff)) < max(6.0, 3.0 * sigma)
    walls = _dilate(edges, OUTLINED_CLOSE) if OUTLINED_CLOSE else edges
    cand = ~product & ~bg0 & ~walls
    if keep is not None:
        cand &= ~keep
    n, labels = cv2.connectedComponents(cand.astype(np.uint8), connectivity=4)
    if n <= 1:
        return mask
    ids = labels.ravel().astype(np.intp)
    size = np.bincount(ids, minlength=n)
    # the rim: non-product pixels next to a region (a pixel between two regions counts for
    # the higher label only -- a cheap approximation, good enough for a share)
    grown = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8))
    rim = ~product & ~cand & (grown > 0)
    rim_ids = grown.astype(np.int32)[rim]
    n_rim = np.bincount(rim_ids, minlength=n)
    n_sharp = np.bincount(rim_ids, walls[rim].astype(np.float64), n)
    fill = (size >= OUTLINED_MIN) & (n_sharp >= OUTLINED_FRAC * np.maximum(n_rim, 1))
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fill[border] = False
    fill[0] = False
    if not fill.any():
        return mask
    depth = 1.0 - np.minimum(_dot(work, B) / np.maximum(_dot(B, B), 1.0), 1.0)
    if pred is not None:
        depth = depth - pred
    fill &= _region_means(ids, n, [depth])[:, 0] > OUTLINED_DEPTH
    filled = fill[labels]
    # a body lies within its outline: what a filled region spills beyond the convex hull of
    # the product and the walls around it (a drop shadow's halo reached through the
    # outline's gap) stays out
    frame = cv2.findNonZero(
        (product | (walls & _dilate(filled, OUTLINED_CLOSE + 1))).view(np.uint8)
    )
    if frame is not None:
        hull = np.zeros(product.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(frame), 1)
        filled &= hull.view(bool)
    if OUTLINED_CLOSE:  # the wall pixels between a filled region and its outline
        filled |= _dilate(filled, OUTLINED_CLOSE + 1) & walls & ~bg0
    out = mask.copy()
    out[filled] = 1.0
    return out


PEEL_DEPTH = 0.6  # deeper than this (fraction of B) is left to the earlier tests
PEEL_TEX = 2.0  # a penumbra is as smooth as the open backdrop, within this factor ...
PEEL_STEEP = 4.0  # ... or, its high-pass above this factor (a steep penumbra's curvature),
PEEL_FINE = 2.0  # its median residual within this factor of the open backdrop's
PEEL_GRAINLESS = 0.7  # ... or a median residual below this factor: less grain than the backdrop
PEEL_SOFT = 0.8  # max (darkening where it meets the backdrop) / (its mean darkening)
PEEL_MAX = 0.5  # max area relative to the mask: more is a leak into a grey product
PEEL_OPEN = 0.08  # min share of a region's outline that meets the open backdrop


def _peel_penumbrae(
    work: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    hp: np.ndarray | None = None,
) -> np.ndarray:
    """Soft shadows still attached under the product: fade in from the backdrop, so not it.

    Where a product's base sits in its own shadow (a terracotta saucer, a sofa's dark
    plinth) there is no contrast between the two, the watershed floods the shadow from the
    product side, and the shadow model, fitted on the little open shadow left around the
    mask, under-predicts it. What still tells them apart is the way in: from the open
    backdrop a shadow darkens gradually (its penumbra), a product starts at a sharp
    outline. So the mask's shadow-like pixels (darker than ``B``, same chromaticity, not on
    a sharp edge) that the open backdrop reaches without crossing a sharp edge form
    regions, and a region goes to the background when it is smooth, lies below the
    product's centre (on the floor), and is light where it meets the backdrop: its
    darkening along that rim is below its mean (at most :data:`PEEL_SOFT` of it: 0.8; the
    watershed often cuts a shadow half-way down its penumbra, so its rim need not be
    faint, though a few chrome and white parts on clipped white then peel; a sliver with
    no pixels away from the product is judged on all its pixels, so grain next to an
    outline is not read as smooth). A grey product reached through a gap in its outline
    starts at full depth there (or is most of the mask) and stays.

    "Smooth" has two readings. The small-blur high-pass of :func:`_highpass` also responds
    to the curvature of a thin, deep contact shadow's steep penumbra (a 5 px band under a
    lamp's foot reads 5-20x the backdrop's texture), so a region also passes when its
    high-pass is that high but its 3x3 median residual (:func:`_median_residual`, which
    passes ramps) stays near the backdrop's: a steep ramp, not grain -- or when its median
    residual is well below the open backdrop's, whatever its high-pass (a broad soft shadow
    under a horse). This runs after
    :func:`_base_shadows`, which takes a contact shadow's dark core along with its rim.
    """
    product = mask >= 0.5
    outside = ~product
    if not outside.any() or not product.any():
        return mask
    k, chroma_d, depth, _ = _shadow_evidence(work, B)
    ref_chroma = float(_median(chroma_d[outside]))
    neutral = chroma_d < _neutral_limit(ref_chroma, sigma, depth)
    shadowish = product & neutral & (k < 1.0) & (depth < PEEL_DEPTH) & ~edges
    n_open, labels = cv2.connectedComponents((shadowish | outside).astype(np.uint8), connectivity=4)
    is_open = np.zeros(n_open, bool)
    is_open[labels[outside]] = True
    reached = is_open[labels] & shadowish
    if not reached.any():
        return mask
    n, regions = cv2.connectedComponents(reached.astype(np.uint8), connectivity=8)
    ids = regions.ravel().astype(np.intp)
    size = np.maximum(np.bincount(ids, minlength=n), 1)
    h, w = depth.shape
    depth_m = np.bincount(ids, depth.ravel(), n) / size
    row_m = np.bincount(ids, np.repeat(np.arange(h, dtype=np.float32), w), n) / size
    rim = _dilate(outside, 1) & reached
    n_rim = np.bincount(ids, rim.ravel(), n)
    rim_depth = np.bincount(ids, (depth * rim).ravel(), n) / np.maximum(n_rim, 1)
    peel = (size <= PEEL_MAX * product.sum()) & (n_rim > 0) & (rim_depth < PEEL_SOFT * depth_m)
    peel &= row_m > float(np.nonzero(product)[0].mean())
    # ... and meets the backdrop along a fair share of its outline (a shadow's outer
    # penumbra); a face walled by the product and edges but for a pinhole gap does not
    outline = np.bincount(ids, (reached & ~_erode(reached, 1)).ravel(), n)
    peel &= n_rim >= PEEL_OPEN * outline
    # ... and, like any region passing as a shadow, keeps the backdrop's tint (a cream lamp
    # shade or a tinted glass body on white reads as neutral pixel by pixel, not on average)
    chroma_m = np.bincount(ids, chroma_d.ravel(), n) / size
    peel &= chroma_m < _neutral_limit(ref_chroma, sigma, depth_m, REGION_CHROMA)
    peel[0] = False
    if not peel.any():  # (the texture test is the costly one)
        return mask
    hp = _highpass(work) if hp is None else hp
    tex = _region_means(ids, n, [hp])[:, 0] / max(float(_median(hp[outside])), 0.5)
    # a deep contact shadow's penumbra is steep: the high-pass reads its curvature as
    # texture, the median residual (which passes ramps) does not -- measured away from the
    # rest of the product, whose outline is real texture
    fine = _median_residual(work)
    away = (reached & ~_dilate(product & ~reached, 2)).ravel()
    n_away = np.bincount(ids, away, n)
    away = np.where((n_away > 0)[ids], away, True)  # (a sliver with none: all of it)
    fine_m = np.bincount(ids, fine.ravel() * away, n) / np.where(n_away > 0, n_away, size)
    fine_m /= max(float(_median(fine[outside])), 0.5)
    steep_ramp = (tex > PEEL_STEEP) & (fine_m < PEEL_FINE)
    peel &= (tex < PEEL_TEX) | steep_ramp | (fine_m < PEEL_GRAINLESS)
    out = mask.copy()
    out[peel[regions]] = 0.0
    return out


LID_SHARP = 0.75  # share of a concavity's lid that must run along a sharp edge ...
LID_NEAR = 2  # ... within this many px (working res)
LID_MIN = 0.05  # min concavity area as a share of the mask's
LID_PART = 0.05  # mask parts this share of the largest one take part in the hull
LID_RES = 2.0  # min mean residual (levels) against the backdrop: not the backdrop itself
LID_CHROMA = 2.0  # levels: a shadow's mean chromaticity offset stays below this ...
LID_EXCESS = 0.03  # ... and its darkening beyond the shadow model's prediction below this


def _fill_lidded(
    work: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    pred: np.ndarray | None,
    keep: np.ndarray | None = None,
    hp: np.ndarray | None = None,
) -> np.ndarray:
    """Concavities of the mask closed by a sharp outline: a glass's bowl, a white face.

    The steps before only fill what the mask or the sharp edges wall in. A wine glass or a
    white cabinet side often stays open on one side -- the rim of the glass, the far edge
    of the side face -- because part of its outline is too faint to be an edge, so its body
    joins the open backdrop. What it still has is a *lid*: where the mask's convex hull
    closes the concavity, it runs along a sharp edge (the glass's rim, the face's outer
    edge). Between a chair's legs or a hanging pot's chains the hull's lid crosses the open
    backdrop instead. So a concavity of the hull (``hull & ~mask``) becomes product when:

    * at least :data:`LID_SHARP` of its lid lies within :data:`LID_NEAR` px of a sharp edge;
    * it is large (:data:`LID_MIN` of the mask): a missed body, not a notch;
    * it is not the backdrop itself: mean residual above :data:`LID_RES` levels, away
      from the mask's blurred rim (the space between chains and petals matches the fit);
    * it is not a shadow: not a neutral, smooth darkening of at least
      :data:`SHADOW_DEPTH_MIN` that the shadow model (``pred``) accounts for;
    * it was not already judged a shadow seen through an opening (``keep``).

    On the dev sets it recovers a wine glass's bowl, an armchair's and a table's shaded
    faces, white lamp shades, bowls and a vase. The thresholds were set on the tuning set's
    regions and the val gain held over a range around each of them (measured with
    ``staging eval segment``: BENCHMARKS.md, Weights-free `catalog` matting, "concavities
    under a sharp lid").
    """
    product = mask >= 0.5
    n, labels, stats, _ = cv2.connectedComponentsWithStats(product.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    area[0] = 0.0
    part = area >= LID_PART * area.max()
    part[0] = False
    outlines, _ = cv2.findContours(
        part[labels].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    hull = np.zeros(product.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.concatenate(outlines)), 1)
    outside_hull = hull == 0
    concave = ~outside_hull & ~product
    nc, cl = cv2.connectedComponents(concave.astype(np.uint8), connectivity=4)
    if nc <= 1:
        return mask
    ids = cl.ravel().astype(np.intp)
    size = np.bincount(ids, minlength=nc)
    lid = concave & _dilate(outside_hull, 1)
    n_lid = np.bincount(cl[lid], minlength=nc)
    n_sharp = np.bincount(cl[lid], _dilate(edges, LID_NEAR)[lid].astype(np.float64), nc)
    fill = (n_lid > 0) & (n_sharp >= LID_SHARP * np.maximum(n_lid, 1))
    fill &= size >= LID_MIN * product.sum()
    if keep is not None:  # already judged a shadow seen through an opening
        fill &= np.bincount(ids, keep.ravel(), nc) < 0.5 * size
    fill[0] = False
    if not fill.any():
        return mask
    k, chroma_d, depth, _ = _shadow_evidence(work, B)
    hp = _highpass(work) if hp is None else hp
    ref_tex = max(float(_median(hp[outside_hull])), 0.5) if outside_hull.any() else 0.5
    excess = depth - pred if pred is not None else depth
    away = np.where(_dilate(product, 2), 0, cl).ravel()  # away from the mask's blurred rim
    residual = np.abs(work - B).max(axis=-1)
    res_m, chroma_m, tex_m, depth_m, excess_m = _region_means(
        away, nc, [residual, chroma_d, hp, depth, excess]
    ).T
    shadow = (
        (depth_m > SHADOW_DEPTH_MIN)
        & (excess_m < LID_EXCESS)
        & (chroma_m < LID_CHROMA)
        & (tex_m < FILL_TEX * ref_tex)
    )
    fill &= (res_m > LID_RES) & ~shadow
    out = mask.copy()
    out[fill[cl]] = 1.0
    return out
