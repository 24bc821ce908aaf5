"""Steps 4 and 5 of the backdrop matting: the soft alpha in a band around the binary outline
(the projection of ``I - B`` on ``F - B``) and the edge-aware decision of a colour guided filter,
so that the outline follows the photo's colour edges."""

from __future__ import annotations

import cv2
import numpy as np

from staging.segment.backdrop.ops import _dilate, _dot, _erode, _normconv, _resize

# The working-resolution mask is off by up to ~1.5 working px (3 px at 512) where an outline
# is faint, so the projection band reaches that far; a narrower band left the staircase of
# the upsampled mask in place. The projection is trusted from a foreground/background
# contrast of ~5 levels on: even a white face on an off-white backdrop differs by that much,
# and the projection places its edge better than the upsampled mask.
ALPHA_BAND = 3  # px at 512 (scaled with the image) either side of the binary boundary
ALPHA_TRUST_MIN = 5.0  # |F - B| (levels) below which the projection is not trusted at all


GUIDE_RADIUS = 4  # px of the half-resolution guided filter (a 9x9 window: ~17x17 at full res)
GUIDE_EPS = 5e-5  # regularisation (RGB in [0, 1]): edges weaker than ~0.007 are smoothed over
GUIDE_REACH = 7  # px (full res): how far from an uncertain pixel the decision may move
GUIDE_UNSURE = 0.02  # alpha strictly between this and 1 - this is "uncertain"


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def _guided_decision(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Which side of 0.5 the uncertain edge pixels fall on, decided by a colour guided filter.

    The projection alpha of :func:`_soft_alpha` is a good matte where its local colour
    estimates are right, but each pixel is decided on its own, so the 0.5 contour wanders
    by a pixel where those estimates are noisy (JPEG, thin parts, white-on-white). A colour
    guided filter (He, Sun & Tang, "Guided Image Filtering", TPAMI 2013; the "fast" variant
    with the coefficients computed at half resolution) fits the alpha locally as a linear
    function of the RGB colour, so the 0.5 contour follows the photo's colour edges. It
    only moves that contour: where the filtered and the projection alpha fall on different
    sides of 0.5 the filtered value is taken, everywhere else the projection alpha (the
    better matte: replacing it in the whole band gives the same IoU but a higher MAE) stays.

    Radius and epsilon were chosen on the dev sets *and* real photos on white. A wide, weakly
    regularised fit (radius 4, epsilon 5e-5) learns the colour-to-alpha map from more
    confident pixels on both sides and follows fainter edges. Going further pays on the
    composites but cuts the white highlights out of chrome tubes and taps in real photos,
    because a highlight on chrome is the backdrop's colour, even with the decision held
    within :data:`GUIDE_REACH` px of the uncertain pixels. The coefficients are solved in
    float64. (The measurements behind these choices are in BENCHMARKS.md.)
    """
    unsure = ((alpha > GUIDE_UNSURE) & (alpha < 1.0 - GUIDE_UNSURE)).view(np.uint8)
    bx, by, bw, bh = cv2.boundingRect(unsure)
    if bw == 0:
        return alpha
    r_full = 2 * GUIDE_RADIUS + 1
    h, w = alpha.shape
    y0, y1 = max(0, by - 2 * r_full), min(h, by + bh + 2 * r_full)
    x0, x1 = max(0, bx - 2 * r_full), min(w, bx + bw + 2 * r_full)
    p_full = alpha[y0:y1, x0:x1]
    hh, ww = p_full.shape
    sw, sh = max(1, ww // 2), max(1, hh // 2)
    g = cv2.resize(image[y0:y1, x0:x1], (sw, sh), interpolation=cv2.INTER_AREA)
    # (float64: with a small epsilon the 3x3 determinant cancels to 0 in float32)
    g = g.astype(np.float64) * (1.0 / 255.0)
    p = cv2.resize(p_full, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float64)
    r = GUIDE_RADIUS
    mean_g = [_box(g[..., c], r) for c in range(3)]
    mean_p = _box(p, r)
    cov_gp = [_box(g[..., c] * p, r) - mean_g[c] * mean_p for c in range(3)]
    var = {}
    for i in range(3):
        for j in range(i, 3):
            var[i, j] = _box(g[..., i] * g[..., j], r) - mean_g[i] * mean_g[j]
    # the 3x3 system (var + eps I) k = cov per pixel, solved with the adjugate
    a00, a01, a02 = var[0, 0] + GUIDE_EPS, var[0, 1], var[0, 2]
    a11, a12, a22 = var[1, 1] + GUIDE_EPS, var[1, 2], var[2, 2] + GUIDE_EPS
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    c11, c12, c22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
    inv_det = 1.0 / (a00 * c00 + a01 * c01 + a02 * c02)
    ca, cb, cc = cov_gp
    k0 = (c00 * ca + c01 * cb + c02 * cc) * inv_det
    k1 = (c01 * ca + c11 * cb + c12 * cc) * inv_det
    k2 = (c02 * ca + c12 * cb + c22 * cc) * inv_det
    b = mean_p - k0 * mean_g[0] - k1 * mean_g[1] - k2 * mean_g[2]
    # evaluate q = k . I + b at full resolution, only near the uncertain pixels (the
    # coefficients upsampled bilinearly there, as a full resize would)
    near = cv2.dilate(unsure[y0:y1, x0:x1], np.ones((GUIDE_REACH, GUIDE_REACH), np.uint8))
    yy, xx = np.nonzero(near)
    n = len(yy)
    cols = 4096  # (remap maps must be narrower than 32767 px: a padded rectangle)
    pad = -n % cols
    map_x = np.pad((xx + 0.5) * (sw / ww) - 0.5, (0, pad)).astype(np.float32).reshape(-1, cols)
    map_y = np.pad((yy + 0.5) * (sh / hh) - 0.5, (0, pad)).astype(np.float32).reshape(-1, cols)
    k0, k1, k2, b = (
        cv2.remap(
            _box(x, r), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ).ravel()[:n]
        for x in (k0, k1, k2, b)
    )
    at = image[y0 + yy, x0 + xx].astype(np.float32) * (1.0 / 255.0)
    q = np.clip(k0 * at[:, 0] + k1 * at[:, 1] + k2 * at[:, 2] + b, 0.0, 1.0)
    p_at = p_full[yy, xx]
    flip = (q >= 0.5) != (p_at >= 0.5)
    out = alpha.copy()
    out[y0 + yy[flip], x0 + xx[flip]] = q[flip]
    return out


def _soft_alpha(
    img: np.ndarray, work: np.ndarray, mask_w: np.ndarray, B_w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution soft alpha from the working-resolution mask; and the seen background."""
    H, W = img.shape[:2]
    wh, ww = mask_w.shape
    hard_w = mask_w >= 0.5
    # local foreground / background colours at working resolution
    # (the background right next to the product, tightly: a shadow deepens towards the
    # product, so a wider or more distant estimate is too light there and pushes the edge
    # outwards; hence just outside the mask, sigma 2 -- measured: BENCHMARKS.md,
    # Weights-free `catalog` matting, "the dev ground truth changed")
    inner_w = _erode(hard_w, 1)
    outer_w = ~hard_w
    F_w, _ = _normconv(work, inner_w.astype(np.float32) + 0.05 * hard_w, 3.0)
    Bl_w, sup_b = _normconv(work, outer_w.astype(np.float32), 2.0)
    wb = np.clip(sup_b * 4.0, 0, 1)[..., None]
    Bl_w = wb * Bl_w + (1 - wb) * B_w

    # background as seen: the clean fit times the shadow factor propagated from outside
    kf = np.clip(_dot(work, B_w) / np.maximum(_dot(B_w, B_w), 1.0), 0.0, 1.0)
    k_w, sup = _normconv(kf[..., None], outer_w.astype(np.float32), 6.0)
    k_w = np.where(sup > 1e-3, k_w[..., 0], 1.0).astype(np.float32)
    bg_seen = _resize(B_w * k_w[..., None], W, H)
    if bg_seen.ndim == 2:
        bg_seen = bg_seen[..., None]

    m = _resize(mask_w, W, H)
    hard = m >= 0.5
    r = max(1, int(round(ALPHA_BAND * max(H, W) / 512)))
    inner = _erode(hard, r)
    outer = ~_dilate(hard, r)
    band = ~inner & ~outer
    prob = inner.astype(np.float32)
    ys, xs = np.nonzero(band)
    if ys.size:
        F = _resize(F_w, W, H).reshape(H, W, -1)[ys, xs]
        Bl = _resize(Bl_w, W, H).reshape(H, W, -1)[ys, xs]
        i = img[ys, xs]
        fb = F - Bl
        den = (fb * fb).sum(1)
        alpha = np.clip(((i - Bl) * fb).sum(1) / np.maximum(den, 1e-3), 0.0, 1.0)
        trust = np.clip((np.sqrt(den) - ALPHA_TRUST_MIN) / 20.0, 0.0, 1.0)
        prob[ys, xs] = trust * alpha + (1 - trust) * m[ys, xs]
    return prob, np.clip(bg_seen, 0, 255).astype(np.float32)
