"""Step 1 of the backdrop matting: the smooth studio background ``B`` behind the product.

A robust polynomial surface per channel fitted on a thumbnail to the backdrop flooded from the
frame, a residual correction for what a polynomial cannot follow (spotlights, sweeps,
vignettes), and the test for a clipped white backdrop, which is not fitted at all."""

from __future__ import annotations

import cv2
import numpy as np

from staging.segment.backdrop.ops import _highpass, _max3, _median, _normconv


def _poly_terms(h: int, w: int, degree: int) -> np.ndarray:
    """Design matrix (h*w, n) of monomials x^i y^j, i + j <= degree, on [-1, 1] coordinates."""
    y = np.linspace(-1, 1, h, dtype=np.float32) if h > 1 else np.zeros(1, np.float32)
    x = np.linspace(-1, 1, w, dtype=np.float32) if w > 1 else np.zeros(1, np.float32)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    xx, yy = xx.ravel(), yy.ravel()
    cols = [xx**i * yy**j for d in range(degree + 1) for i in range(d + 1) for j in [d - i]]
    return np.stack(cols, axis=1)


def _n_terms(degree: int) -> int:
    return (degree + 1) * (degree + 2) // 2


def _solve(terms: np.ndarray, values: np.ndarray, sel: np.ndarray) -> np.ndarray:
    a = terms[sel]
    b = values[sel]
    # Normal equations with a whisper of ridge: stable and fast for <= 10 terms.
    ata = a.T @ a
    ata += np.eye(ata.shape[0], dtype=np.float32) * (1e-4 * max(1.0, float(np.trace(ata))))
    return np.linalg.solve(ata.astype(np.float64), (a.T @ b).astype(np.float64)).astype(np.float32)


def _fit_background(
    small: np.ndarray, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, float, int, np.ndarray]:
    """Robust polynomial background on a thumbnail: (coefficients, noise sigma, degree, the
    smooth border-connected region it was fitted to)."""
    h, w = small.shape[:2]
    vals = small.reshape(-1, 3)
    border = _frame_ring(h, w).ravel()

    # Start: the border's dominant colour (a product touching the frame is a minority).
    med = _median(vals[border], axis=0)
    res = np.abs(vals - med).max(1)
    tol = max(12.0, float(_median(res[border])) * 3.0)
    sel = border & (res < tol)
    if sel.sum() < 3:
        sel = border
    if allowed is not None and (sel & allowed).sum() >= 3:
        sel = sel & allowed
    # The backdrop is smooth: flood from those border pixels through low-gradient pixels so
    # a spotlight or sweep far from the frame takes part in the fit from the start (a strict
    # flood for the polynomial, a looser one for the residual correction).
    region = sel.reshape(h, w).copy()
    if min(h, w) >= 8:
        grad = _max3(cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)))
        g0 = 3.0 * float(_median(grad[sel.reshape(h, w)]))
        for limit, loose in ((12.0, False),):
            smooth = grad < max(limit, g0)
            if allowed is not None:
                smooth &= allowed.reshape(h, w)
            n, lab = cv2.connectedComponents(smooth.astype(np.uint8), connectivity=4)
            seeds = np.unique(lab.ravel()[sel & smooth.ravel()])
            seeds = seeds[seeds > 0]
            if not seeds.size:
                continue
            flood = np.isin(lab, seeds)
            if loose:
                region = flood | region
            elif flood.sum() > sel.sum():
                sel = flood.ravel()
                region = flood
    max_degree = 3 if min(h, w) >= 16 else (1 if min(h, w) >= 4 else 0)
    terms_full = _poly_terms(h, w, max_degree)
    coef = np.zeros((_n_terms(max_degree), 3), np.float32)
    coef[0] = _median(vals[sel], axis=0)
    sigma = 2.0
    # (degree, where new inliers may come from): border first, then the whole thumbnail.
    schedule = ((1, sel.copy()), (2, sel.copy()), (2, None), (3, None), (3, None))
    for deg, pool in schedule:
        deg = min(deg, max_degree)
        n = _n_terms(deg)
        if sel.sum() < 2 * n:
            break
        terms = terms_full[:, :n]
        c = _solve(terms, vals, sel)
        res = np.abs(vals - terms @ c).max(1)
        sigma = max(1.0, 1.4826 * float(_median(res[sel])))
        new = res < max(4.0 * sigma, 5.0)
        if pool is not None:
            new &= pool
        if allowed is not None:
            new &= allowed
        coef = np.zeros_like(coef)
        coef[:n] = c

        if new.sum() >= 2 * n:
            sel = new
    return coef, sigma, max_degree, region


def _eval_poly(coef: np.ndarray, degree: int, h: int, w: int) -> np.ndarray:
    """The fitted surface on an h x w grid, separably: B_c = Y @ C_c @ X^T."""
    y = np.linspace(-1, 1, h, dtype=np.float32) if h > 1 else np.zeros(1, np.float32)
    x = np.linspace(-1, 1, w, dtype=np.float32) if w > 1 else np.zeros(1, np.float32)
    ypow = np.stack([y**j for j in range(degree + 1)], axis=1)
    xpow = np.stack([x**i for i in range(degree + 1)], axis=1)
    idx = [(i, d - i) for d in range(degree + 1) for i in range(d + 1)]
    planes = []
    for c in range(3):
        cm = np.zeros((degree + 1, degree + 1), np.float32)
        for t, (i, j) in enumerate(idx):
            cm[j, i] = coef[t, c]
        # cv2.gemm, not numpy's BLAS: no thread spin-up for a 2-D outer product.
        planes.append(cv2.gemm(ypow @ cm, xpow, 1.0, None, 0.0, flags=cv2.GEMM_2_T))
    return cv2.merge(planes).reshape(h, w, 3)


CLIPPED_LEVEL = 254  # a backdrop pixel this bright in every channel is clipped white ...
CLIPPED_SHARE = 0.95  # ... and a frame ring this share clipped is a clipped white backdrop


def _clipped_white(image: np.ndarray) -> bool:
    """Whether the backdrop is clipped white (the usual e-commerce shot): then it is exactly
    255 wherever it shows, and fitting a smooth surface to it only lets a white product's
    shaded body, which matches within the fit's tolerance, drag the surface down -- the
    body then reads as backdrop and the clipped white around it as product (a halo).
    Not fitting a clipped white backdrop brings back lamp shades, bell jars and white bowls
    on real IKEA product photos on white; white strips and glass that match the white
    exactly, and synthetic white mugs barely darker than it, are lost (measured:
    BENCHMARKS.md, Weights-free `catalog` matting, "real photos on clipped white").
    """
    if image.ndim != 3 or min(image.shape[:2]) < 8:
        return False
    h, w = image.shape[:2]
    r = _ring_width(h, w)  # the frame ring of _frame_ring, as 4 strips
    strips = [image[:r], image[-r:], image[r:-r, :r], image[r:-r, -r:]]
    if image.dtype == np.uint8:  # (inRange: ~10x faster than a boolean index at 512 px)
        lo, hi = (CLIPPED_LEVEL,) * 3, (255,) * 3
        clipped = sum(cv2.countNonZero(cv2.inRange(s, lo, hi)) for s in strips)
    else:
        clipped = sum(int((s >= CLIPPED_LEVEL).all(axis=-1).sum()) for s in strips)
    return clipped >= CLIPPED_SHARE * sum(s.shape[0] * s.shape[1] for s in strips)


OPEN_FRAC = 0.99  # a thumbnail pixel is open backdrop when this share of it is
OPEN_MIN = 64  # fewer open thumbnail pixels than this: fit without the walls


INNER_CHROMA = 2.5  # levels: a hole's mean offset from the fit is a brightness change only


def _neutral_parts(small: np.ndarray, poly: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The enclosed parts whose mean offset from the fitted backdrop is achromatic.

    Enclosed, edge-free pixels that match the polynomial may steer the residual correction
    (a hole between slats under a spotlight is brighter than the fit). So may, within the
    tolerance, a white face (a clock's dial, a cabinet door) on an off-white backdrop,
    and the correction then follows it and it vanishes into the background. The two
    differ in kind: a spotlight or shadow scales the backdrop (the mean offset is along
    ``B``, e.g. +3/+3/+3), a product has its own colour (-4/0/+3 on a pinkish backdrop).
    """
    n, lab = cv2.connectedComponents(inner.astype(np.uint8), connectivity=4)
    if n <= 1:
        return inner
    ids = lab.ravel().astype(np.intp)
    cnt = np.maximum(np.bincount(ids, minlength=n), 1).astype(np.float64)
    mi = np.stack([np.bincount(ids, small[..., c].ravel(), n) for c in range(3)], 1) / cnt[:, None]
    mp = np.stack([np.bincount(ids, poly[..., c].ravel(), n) for c in range(3)], 1) / cnt[:, None]
    k = (mi * mp).sum(1) / np.maximum((mp * mp).sum(1), 1e-6)
    chroma = np.sqrt(((mi - k[:, None] * mp) ** 2).sum(1))
    ok = chroma < INNER_CHROMA
    ok[0] = False
    return ok[lab]


def _ring_width(h: int, w: int) -> int:
    """Width of the frame ring that samples the backdrop: 5 % of the shorter side."""
    return max(1, int(round(0.05 * min(h, w))))


def _frame_ring(h: int, w: int) -> np.ndarray:
    ring = _ring_width(h, w)
    m = np.zeros((h, w), bool)
    m[:ring] = m[-ring:] = True
    m[:, :ring] = m[:, -ring:] = True
    return m


def _open_backdrop(edges: np.ndarray) -> np.ndarray:
    """Pixels reachable from the frame without crossing a sharp edge (the open backdrop)."""
    n, lab = cv2.connectedComponents((~edges).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    keep = np.zeros(n, bool)
    keep[border] = True
    keep[0] = False
    return keep[lab]


def _noise_sigma(work: np.ndarray, region: np.ndarray, hp: np.ndarray | None = None) -> float:
    """Per-channel pixel noise on the backdrop, from the high-pass residual (robust)."""
    hp = _highpass(work) if hp is None else hp
    vals = hp[region] if region.sum() > 32 else hp.ravel()
    return float(np.clip(1.4826 * _median(vals) * 1.1, 0.5, 8.0))


def _refine_background(
    small: np.ndarray, poly: np.ndarray, sigma: float, region: np.ndarray
) -> np.ndarray:
    """Polynomial plus the residual of the matching pixels, smoothly interpolated."""
    tol = max(4.0 * sigma, 5.0)
    B = poly
    s = max(1.5, 0.06 * max(small.shape[:2]))
    for _ in range(2):
        diff = small - B
        res = _max3(np.abs(diff))
        # the flood may also cover soft shadows: from it take only pixels not darker than B
        lighter = diff.mean(2) > -tol
        inl = (region & ((res < tol + 2.0) | (lighter & (res < 30.0)))).astype(np.float32)
        if inl.sum() < 8:
            return B
        corr, sup = _normconv(small - poly, inl, s)
        wgt = np.clip(sup * 3.0, 0.0, 1.0)[..., None]
        B = poly + corr * wgt
    return B
