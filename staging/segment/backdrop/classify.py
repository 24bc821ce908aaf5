"""Steps 2, 3 and 3b of the backdrop matting: each pixel as background, product or
shadow-like against ``B``, the watershed that settles the shadow-like ones, the sharp outline
edges, and the enclosed regions filled back in when they do not look like the backdrop."""

from __future__ import annotations

import cv2
import numpy as np

from staging.segment.backdrop.ops import (
    REGION_CHROMA,
    _dilate,
    _dot,
    _erode,
    _highpass,
    _max3,
    _median,
    _neutral_limit,
    _region_means,
)


def _classify(
    work: np.ndarray,
    B: np.ndarray,
    sigma: float,
    grad: np.ndarray,
    edges: np.ndarray,
    hp: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary product mask at working resolution (float32 0/1), and the pixels that had no
    marker (left to the watershed)."""
    diff = work - B
    dist = np.sqrt(_dot(diff, diff))
    bb = _dot(B, B)
    k = _dot(work, B) / bb
    chroma = work - k[..., None] * B
    chroma_d = np.sqrt(_dot(chroma, chroma))

    t_bg = max(6.0, 3.0 * sigma)
    t_chroma = max(9.0, 3.5 * sigma)
    bg0 = dist < t_bg
    bright = (k - 1.0) * np.sqrt(bb) > t_bg
    certain = ~bg0 & ((chroma_d > t_chroma + 0.07 * dist) | bright | (k < 0.2))

    # Steps: non-background pixels next to the background that jump straight to (nearly)
    # their full contrast. Shadows fade in; products start at an edge.
    ker5 = np.ones((5, 5), np.uint8)
    near_bg = _dilate(bg0, 2) & ~bg0
    local_max = cv2.dilate(dist, ker5)
    step = near_bg & (dist > 2.5 * t_bg) & (dist > 0.6 * local_max)

    inside = _edge_enclosed(work, edges, sigma, bg0, certain | step, k, chroma_d, hp=hp)

    markers = np.zeros(dist.shape, np.int32)
    markers[bg0] = 1
    markers[certain | step | inside] = 2
    undecided = ~(bg0 | certain | step)  # 'inside' regions may still be shadowed openings
    scale = 255.0 / max(float(grad.max()), 1.0)
    g8 = np.clip(grad * scale, 0, 255).astype(np.uint8)
    cv2.watershed(cv2.merge([g8, g8, g8]), markers)
    product = markers == 2
    product |= (markers == -1) & _dilate(product)
    product &= ~bg0 | _erode(product, 1)
    return product.astype(np.float32), undecided


EDGE_CLOSE = 2  # gaps up to ~2x this (px) in an outline are closed
EDGE_SHARPNESS = 0.75  # 3x3 / 7x7 contrast ratio above which a gradient is an object edge


def _outline_edges(work: np.ndarray, grad: np.ndarray, sigma: float) -> np.ndarray:
    """Sharp edges (object outlines, not shadow penumbrae), thickened to close small gaps.

    A product's outline is a step: almost all the contrast of a 7x7 window is already there
    across 3x3. A shadow is blurred, so its 3x3 contrast is a fraction of the 7x7 one.
    """
    t_edge = max(8.0, 5.0 * sigma)
    wide = _max3(cv2.morphologyEx(work, cv2.MORPH_GRADIENT, np.ones((7, 7), np.uint8)))
    edge = (grad > t_edge) & (grad > EDGE_SHARPNESS * wide)
    return _dilate(edge, EDGE_CLOSE)


def _edge_enclosed(
    work: np.ndarray,
    edge: np.ndarray,
    sigma: float,
    bg0: np.ndarray,
    sure: np.ndarray,
    k: np.ndarray,
    chroma_d: np.ndarray,
    hp: np.ndarray | None = None,
) -> np.ndarray:
    """Shadow-like pixels shut off from the backdrop by sharp edges: product markers.

    A grey, silver or shaded product (lamp shade, steel bowl) is "shadow-like" inside, and
    where it meets its own shadow the watershed can let the backdrop flood in through the
    shadow. Edges tell the two apart: a product's outline is a sharp step (almost all of the
    contrast of a 7x7 window is already there across 3x3), a shadow is blurred, so it fades
    into the backdrop without one. Regions bounded by sharp edges and product pixels that
    contain no backdrop pixels are product, unless they read as a shadow seen through a hole
    (darker, same chromaticity, smooth, no deeper than the shadow on the open backdrop).
    """
    free = ~edge & ~sure
    n, labels = cv2.connectedComponents(free.astype(np.uint8), connectivity=4)
    if n <= 2:
        return np.zeros(bg0.shape, bool)
    ids = labels.ravel().astype(np.intp)
    size = np.bincount(ids, minlength=n)
    n_bg = np.bincount(ids, bg0.ravel(), n)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    # open: reaches the frame, or mostly backdrop (a hole; _fill_enclosed judges it later)
    opened = n_bg >= 0.5 * size
    opened[border] = True
    opened[0] = True  # label 0: edges and sure product
    open_px = opened[labels]
    hp = _highpass(work) if hp is None else hp
    hp = np.where(_dilate(edge, 1), 0.0, hp)  # texture away from the outline
    stats = _region_means(ids, n, [k, chroma_d, hp])
    k_mean, chroma_m, tex = stats[:, 0], stats[:, 1], stats[:, 2]
    ref_tex = max(float(_median(hp[bg0])) if bg0.any() else sigma, 0.5)
    ref_chroma = float(_median(chroma_d[bg0])) if bg0.any() else sigma
    h, w = bg0.shape
    depth = np.where(open_px & ~bg0 & free, np.clip(1.0 - k, 0.0, 1.0), 0.0).astype(np.float32)
    r = max(1, int(round(SHADOW_REACH * max(h, w))))
    near_depth = cv2.dilate(depth, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    near = _region_means(ids, n, [near_depth])[:, 0]
    shadow_like = (
        (k_mean < 1.0)
        & (chroma_m < _neutral_limit(ref_chroma, sigma, 1.0 - k_mean))
        & (tex < FILL_TEX * ref_tex)
        & (near > SHADOW_MIN)
        & (1.0 - k_mean < near + 0.02)
    )
    mark = ~opened & ~shadow_like & (size >= 4)
    return mark[labels]


FILL_DELTA = 2.0  # mean residual (levels) above which an enclosed region is not backdrop
FILL_TEX = 2.0  # ... or fine texture this many times the open backdrop's
SHADOW_MIN = 0.03  # a "shadow" shallower than this (fraction of B) is no excuse for a hole
SHADOW_REACH = 0.15  # how far (fraction of the image side) a hole looks for the shadow outside
NEAR_MIN = 16  # px (working res): a darker patch of the open backdrop this small is no shadow


def _fill_enclosed(
    work: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    edges: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    hp: np.ndarray | None = None,
) -> np.ndarray:
    """Enclosed "background" regions that do not look like the backdrop become product.

    White-on-white products (lamp shades, bowls, cabinets) leave regions inside their outline
    that are close to the backdrop colour. A real hole (between slats, inside a handle) shows
    the backdrop itself: its residual against the fitted backdrop is ~0 and its fine texture
    is the open backdrop's. Anything enclosed that fails that test is product -- unless the
    difference is explained by a shadow: a hole behind which the product casts a drop shadow
    is darker than the backdrop, but only by a smooth multiplicative factor ``k < 1`` (same
    chromaticity, no texture) and never darker than the shadow the product casts next to
    itself on the open backdrop. A white product's shading can pass that test too, so it is
    applied only where such a shadow is actually present nearby.

    The faint outline of a white product often has gaps, so its interior leaks into the open
    backdrop; the sharp ``edges`` (gaps closed) are used as extra walls between regions.
    """
    product = mask >= 0.5
    walls = product if edges is None else product | edges
    n, labels = cv2.connectedComponents((~walls).astype(np.uint8), connectivity=4)
    if n <= 2:
        return mask
    h, w = product.shape
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    is_open = np.zeros(n, bool)
    is_open[border] = True
    is_open[0] = False  # label 0 is the product itself
    if is_open.sum() == 0:
        return mask

    bb = np.maximum(_dot(B, B), 1.0)
    k = _dot(work, B) / bb  # shadow factor
    chroma = work - k[..., None] * B
    chroma_d = np.sqrt(_dot(chroma, chroma))
    diff = work - B
    # fine texture: what is left after a small blur (a smooth shadow gradient is not texture)
    hp = _highpass(work) if hp is None else hp
    # statistics away from the product's outline (its blur would read as texture); tiny
    # regions with no such pixels use all of theirs
    core = ~_dilate(product, 2)
    ids = labels.ravel().astype(np.intp)
    ids_core = np.where(core, labels, n).ravel()
    n_core = np.bincount(ids_core, minlength=n + 1)[:n]
    use_core = n_core >= 4
    ids = np.where(use_core[labels] & ~core, n, labels).ravel()
    stats = _region_means(ids, n + 1, [diff[..., 0], diff[..., 1], diff[..., 2], hp, chroma_d, k])[
        :n
    ]
    mean_abs = np.abs(stats[:, :3]).max(1)
    tex, chroma_m, k_mean = stats[:, 3], stats[:, 4], stats[:, 5]
    open_bg = is_open[labels]
    ref_tex = float(_median(hp[open_bg])) if open_bg.any() else sigma
    ref_tex = max(ref_tex, 0.5)
    ref_chroma = float(_median(chroma_d[open_bg])) if open_bg.any() else sigma

    # deepest shadow on the open backdrop within reach of each pixel
    depth = np.where(open_bg, np.clip(1.0 - k, 0.0, 1.0), 0.0).astype(np.float32)
    # (a shadow is a blob: a few dark specks the mask missed along a chrome leg are no
    # shadow that would excuse a same-coloured face)
    _, specks, blobs, _ = cv2.connectedComponentsWithStats(
        (depth > SHADOW_MIN).astype(np.uint8), connectivity=8
    )
    tiny = blobs[:, cv2.CC_STAT_AREA] < NEAR_MIN
    tiny[0] = False
    depth[tiny[specks]] = 0.0
    r = max(1, int(round(SHADOW_REACH * max(h, w))))
    near_depth = cv2.dilate(depth, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    region_depth = _region_means(ids, n + 1, [1.0 - np.minimum(k, 1.0)])[:n, 0]
    max_near = _region_means(ids, n + 1, [near_depth])[:n, 0]

    differs = mean_abs > FILL_DELTA
    textured = tex > FILL_TEX * ref_tex
    shadow_like = (
        (k_mean < 1.0)
        & (chroma_m < _neutral_limit(ref_chroma, sigma, 1.0 - k_mean, REGION_CHROMA))
        & (tex < FILL_TEX * ref_tex)
        & (max_near > SHADOW_MIN)
        & (region_depth < max_near + 0.02)
    )
    fill = (differs & ~shadow_like) | textured
    fill &= ~is_open
    if keep is not None:  # already judged a shadow seen through a hole
        fill &= np.bincount(labels.ravel(), keep.ravel(), n) < 0.5 * np.bincount(labels.ravel())
    fill[0] = False
    out = mask.copy()
    out[fill[labels]] = 1.0
    if edges is not None:
        # wall pixels left between filled regions and the product are product too
        rest = out < 0.5
        n2, lab2 = cv2.connectedComponents(rest.astype(np.uint8), connectivity=4)
        open2 = np.zeros(n2, bool)
        open2[np.unique(np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]]))] = True
        n_free = np.bincount(lab2.ravel(), (rest & ~edges).ravel(), n2)
        open2 |= n_free > 0
        open2[0] = True
        out[~open2[lab2]] = 1.0
    return out
