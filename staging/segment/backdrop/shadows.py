"""Step 3a of the backdrop matting: the explicit shadow model.

The darkening ``1 - I/B`` of the open backdrop is fitted on a thumbnail as drop, cast and
contact shadows of the silhouette; a shadow-like region of the mask goes to the background when
the model predicts its darkening, and a neutral smooth band that borders the backdrop does too."""

from __future__ import annotations

import cv2
import numpy as np

from staging.segment.backdrop.classify import FILL_TEX
from staging.segment.backdrop.ops import (
    REGION_CHROMA,
    _dilate,
    _dot,
    _fit_size,
    _highpass,
    _median,
    _neutral_limit,
    _region_means,
    _resize,
)

SHADOW_DEPTH_MIN = 0.03  # shallower than this is not a shadow (and bg0 would have caught it)


SHADOW_MAX = 0.85  # studio shadows never darken the backdrop more than this


SHADOW_SIDE = 64  # shadow-fit thumbnail (longer side)
DROP_SIGMAS = (0.6, 1.2, 2.0, 3.2)  # blur of a drop shadow (fraction of SHADOW_SIDE / 64)
DROP_DX = 0.07  # max sideways offset of a drop shadow (fraction of the longer side)
DROP_DY = (-0.01, 0.06)  # vertical offset range (down is positive)
CAST_SQUASH = (0.15, 0.3, 0.45, -0.15, -0.3)  # floor projection: height scale (< 0: in front)
CAST_SHEAR = (-1.0, 0.0, 1.0)
CAST_SIGMA = 1.5  # penumbra far from the contact line (the near one is ~sharp)
CAST_SHIFT = 0.02  # free offset of a cast shadow (fraction of the longer side)


class _ShadowModel:
    """Backdrop darkening ``1 - I/B`` explained as a sum of linear images of the silhouette.

    Studio shadows are copies of the product's silhouette: a drop shadow is an offset,
    blurred copy; a cast shadow a copy squashed and sheared onto the floor from the
    product's base; a contact shadow a blurred band under the base. Each term ``j`` is
    ``strength_j * L_j(mask)`` with ``L_j`` linear (warp, blur, shift), so the shadow the
    model predicts for any other mask -- e.g. the product with an opening removed -- is one
    cheap re-application. Fitted on a thumbnail, only over pixels known to be backdrop or
    shadow (outside the product), by least squares per candidate over a small grid.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.terms: list[tuple[str, tuple, float]] = []  # (kind, params, strength)
        self.fixed = np.zeros(shape, np.float32)  # the contact term: not linear in the mask
        self.rms = 1.0  # residual on the fit pixels
        self.explained = 0.0  # share of the observed darkening's energy it explains
        # the darkening predicted from the final silhouette at working resolution (set by
        # _model_shadows; _fill_outlined asks whether a region's darkening is a shadow)
        self.pred_w: np.ndarray | None = None

    def predict(self, mask_t: np.ndarray) -> np.ndarray:
        out = self.fixed.copy()
        for kind, params, a in self.terms:
            out += a * _shadow_basis(kind, params, mask_t)
        return np.clip(out, 0.0, SHADOW_MAX)


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    h, w = img.shape
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.3:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)


def _cast_warp(mask_t: np.ndarray, squash: float, shear: float, sigma: float) -> np.ndarray:
    """The silhouette projected on the floor from its base line, softer further from it."""
    h, w = mask_t.shape
    rows = np.nonzero(mask_t.max(1) > 0.5)[0]
    if not rows.size:
        return np.zeros_like(mask_t)
    top, base = float(rows[0]), float(rows[-1])
    m = np.array(
        [[1.0, -shear * squash, shear * squash * base], [0.0, squash, base * (1 - squash)]],
        np.float32,
    )
    proj = cv2.warpAffine(mask_t, m, (w, h), flags=cv2.INTER_LINEAR)
    near, far = proj, _blur(proj, sigma)
    reach = max(2.0, abs(squash) * (base - top))
    t = np.clip(np.abs(np.arange(h, dtype=np.float32) - base) / reach, 0, 1)[:, None]
    return (near * (1 - t) + far * t) * (1 - 0.4 * t)


def _shadow_basis(kind: str, params: tuple, mask_t: np.ndarray) -> np.ndarray:
    if kind == "drop":
        sigma, dx, dy = params
        return _shift(_blur(mask_t, sigma), dx, dy)
    squash, shear, sigma, dx, dy = params
    return _shift(_cast_warp(mask_t, squash, shear, sigma), dx, dy)


def _offset_windows(img: np.ndarray, rx: int, ry: tuple[int, int]) -> np.ndarray:
    """Every integer offset ``d`` of ``img`` as a row: ``out[d, p] = img(p + d)``, zero outside.

    Rows run over ``dy`` in ``ry[0]..ry[1]`` then ``dx`` in ``-rx..rx``."""
    h, w = img.shape
    top, bot = max(0, -ry[0]), max(0, ry[1])
    pad = cv2.copyMakeBorder(img, top, bot, rx, rx, cv2.BORDER_CONSTANT, value=0)
    win = np.lib.stride_tricks.sliding_window_view(pad, (h, w))
    return win.reshape(-1, h * w)


def _best_offsets(
    resid: np.ndarray, weight: np.ndarray, bases: np.ndarray, den: np.ndarray, rx: int, ry: tuple
) -> tuple[int, float, float, int, int]:
    """The candidate basis and integer offset that best explain ``resid``.

    Closed-form least squares for every (basis ``j``, offset ``d``) pair at once: the
    strength is ``sum(w r B_j(p - d)) / sum(w B_j(p - d)^2)``, both sums correlations,
    computed as small matrix products over the offset windows (``den``, which does not
    depend on the residual, once per fit: :func:`_offset_energy`); the drop in squared
    residual is ``num * strength``. ``bases`` is (n, h*w). Returns (j, gain, strength, dx, dy).
    """
    # cv2.gemm, not numpy's BLAS: no thread spin-up for these small products
    wins = _offset_windows(resid * weight, rx, ry)
    num = cv2.gemm(wins, bases, 1.0, None, 0.0, flags=cv2.GEMM_2_T)  # (offsets, n)
    a = num / np.maximum(den, 1e-6)
    gain = np.where(a > 0, num * a, 0.0)
    i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
    nx = 2 * rx + 1
    dy, dx = i // nx + min(0, ry[0]), i % nx - rx
    return int(j), float(gain[i, j]), float(a[i, j]), int(dx), int(dy)


def _offset_energy(weight: np.ndarray, bases: np.ndarray, rx: int, ry: tuple) -> np.ndarray:
    """``sum(w B_j(p - d)^2)`` for every offset ``d`` and basis ``j`` (offsets, n)."""
    wins = _offset_windows(weight, rx, ry)
    return cv2.gemm(wins, bases * bases, 1.0, None, 0.0, flags=cv2.GEMM_2_T)


def _shadow_candidates(mask_t: np.ndarray) -> dict:
    """The candidate terms for a silhouette: per family (params, bases, x range, y range),
    and the contact basis. Built once per silhouette, shared by its fits."""
    h, w = mask_t.shape
    side = max(h, w)
    scale = side / 64.0
    rx = int(round(DROP_DX * side))
    ry = (int(np.floor(DROP_DY[0] * side)), int(np.ceil(DROP_DY[1] * side)))
    rc = max(1, int(round(CAST_SHIFT * side)))
    drop_p = [s * scale for s in DROP_SIGMAS]
    cast_p = [(q, sh, CAST_SIGMA * scale) for q in CAST_SQUASH for sh in CAST_SHEAR]
    drops = np.stack([_blur(mask_t, s).ravel() for s in drop_p])
    casts = np.stack([_cast_warp(mask_t, *p).ravel() for p in cast_p])
    return {
        "drop": (drop_p, drops, rx, ry),
        "cast": (cast_p, casts, rc, (-rc, rc)),
        "contact": _contact_basis(mask_t),
    }


def _fit_shadow_model(
    depth_t: np.ndarray, mask_t: np.ndarray, weight: np.ndarray, cands: dict
) -> _ShadowModel:
    """Fit drop, cast and contact terms to the observed darkening ``depth_t`` (thumbnail).

    ``weight`` selects the pixels known to be backdrop or shadow; ``cands`` comes from
    :func:`_shadow_candidates` for ``mask_t``. Each family (drop, cast) picks its best
    candidate and offset against what the others leave, then the chosen strengths and the
    contact term are refitted jointly (non-negative); two rounds.
    """
    h, w = mask_t.shape
    model = _ShadowModel((h, w))
    wsum = float(weight.sum())
    if wsum < 16 or mask_t.max() < 0.5:
        return model
    contact = cands["contact"]
    families = {
        name: (params, bases, _offset_energy(weight, bases, ox, oy), ox, oy)
        for name, (params, bases, ox, oy) in ((k, cands[k]) for k in ("drop", "cast"))
    }
    chosen: dict[str, tuple[str, tuple]] = {}
    strength: dict[str, float] = {}
    contact_a = 0.0
    for _ in range(2):
        for name, (params, bases, den, ox, oy) in families.items():
            others = contact_a * contact
            for other, (kind, p) in chosen.items():
                if other != name:
                    others = others + strength[other] * _shadow_basis(kind, p, mask_t)
            j, gain, a, dx, dy = _best_offsets(depth_t - others, weight, bases, den, ox, oy)
            if gain > 0:
                p = params[j]
                chosen[name] = (name, (p, dx, dy) if name == "drop" else (*p, dx, dy))
                strength[name] = a
        names = list(chosen)
        cols = [_shadow_basis(*chosen[n], mask_t) for n in names] + [contact]
        coef = _nnls(cols, depth_t, weight)
        strength = {n: float(coef[i]) for i, n in enumerate(names)}
        contact_a = float(coef[-1])
    model.terms = [(*chosen[n], strength[n]) for n in chosen if strength[n] > 0]
    model.fixed = (contact_a * contact).astype(np.float32)
    res = (depth_t - model.predict(mask_t)) * np.sqrt(weight)
    sq = float((res * res).sum())
    model.rms = float(np.sqrt(sq / wsum))
    model.explained = 1.0 - sq / max(float((depth_t * depth_t * weight).sum()), 1e-6)
    return model


def _rms(res: np.ndarray, weight: np.ndarray) -> float:
    return float(np.sqrt((res * res * weight).sum() / max(float(weight.sum()), 1.0)))


def _nnls(cols: list[np.ndarray], target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted least squares with non-negative coefficients (a handful of columns)."""
    A = np.stack([c.ravel() for c in cols], 1).astype(np.float64)
    wv = weight.ravel().astype(np.float64)
    b = target.ravel().astype(np.float64)
    active = np.ones(A.shape[1], bool)
    coef = np.zeros(A.shape[1])
    for _ in range(A.shape[1]):
        Aa = A[:, active]
        ata = Aa.T @ (Aa * wv[:, None]) + 1e-6 * np.eye(int(active.sum()))
        sol = np.linalg.solve(ata, Aa.T @ (b * wv))
        coef[:] = 0.0
        coef[active] = sol
        if (sol >= 0).all():
            break
        active[np.nonzero(active)[0][sol < 0]] = False
        if not active.any():
            break
    return np.clip(coef, 0.0, None)


def _contact_basis(mask_t: np.ndarray) -> np.ndarray:
    """A blurred band under the product's footprint (where it touches the floor)."""
    h, w = mask_t.shape
    rows = np.nonzero(mask_t.max(1) > 0.5)[0]
    out = np.zeros_like(mask_t)
    if not rows.size:
        return out
    top, base = int(rows[0]), int(rows[-1])
    foot_rows = mask_t[max(top, base - max(1, int(0.06 * (base - top + 1)))) : base + 1]
    foot = cv2.dilate(foot_rows.max(0).reshape(1, -1), np.ones((1, 3), np.uint8)).ravel()
    out[max(0, base - 1) : base + 2] = foot
    return _blur(out, 1.2 * max(h, w) / 64.0)


SM_FIT_MIN = 0.0  # min share of the darkening the fit explains (0: the per-region tests decide)
SM_TOL = 0.04  # mean |observed - predicted| darkening over a region explained by the model
SM_BAD = 0.08  # a pixel this far off the prediction is not explained ...
SM_BAD_FRAC = 0.25  # ... and at most this share of an explained region is
SM_MIN_PRED = 0.04  # the model must predict at least this much shadow over the region
SM_MATCH = 0.2  # ... or it predicts the region's mean depth within this share of it, and
SM_TOL_ROUGH = 0.08  # ... its mean |observed - predicted| stays below this
SM_BAD_ROUGH = 0.35  # ... with at most this share of pixels off by SM_BAD
SM_ROUNDS = 3  # self-consistency passes
SM_CORE_SLACK = 0.003  # the core model may fit the open backdrop this much worse (rms)


def _model_shadows(
    work: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray,
    undecided: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    hp: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, _ShadowModel]:
    """Shadow-like regions the product mask claims that the fitted shadow model explains.

    The model is fitted on the darkening of the open backdrop around the product; a region
    of the mask (an opening between legs, a soft shadow the watershed attached to an
    outline) goes to the background when, with the region removed from the silhouette,
    the model still predicts its darkening pixel by pixel. A white or grey product face
    whose shading the model does not predict stays product.

    "Predicts" has two readings: pixel by pixel within :data:`SM_TOL`, or -- for a deep
    shadow the blurred, shifted silhouette fits only roughly (a rim a pixel out: errors
    of 0.04-0.08 where the shadow is 0.2-0.35 deep) -- its mean depth within
    :data:`SM_MATCH` of it. A grey face the model does not cast is far off in the mean
    (what this recovers: a drop shadow seen through a bench's side openings).

    Returns the new mask, the removed pixels and the model.
    """
    product = mask >= 0.5
    wh, ww = product.shape
    bb = np.maximum(_dot(B, B), 1.0)
    k = _dot(work, B) / bb
    chroma = work - k[..., None] * B
    chroma_d = np.sqrt(_dot(chroma, chroma))
    depth = np.clip(1.0 - k, 0.0, 1.0).astype(np.float32)
    outside = ~_dilate(product, 2)
    ref_chroma = float(_median(chroma_d[outside])) if outside.any() else sigma
    neutral = chroma_d < _neutral_limit(ref_chroma, sigma, depth)
    fit_px = outside & neutral & (k < 1.05)

    th, tw = _fit_size(wh, ww, SHADOW_SIDE)
    mask_t = _resize(mask.astype(np.float32), tw, th)
    depth_t = _resize(depth, tw, th)
    weight = (_resize(fit_px.astype(np.float32), tw, th) > 0.99).astype(np.float32)
    # The silhouette casting the shadows: the mask, or -- when the watershed let shadows
    # into it (they hug the legs that cast them) -- only its marked core (certain and step
    # pixels), fitted also over the unmarked pixels around it, robustly (a grey product's
    # face is an outlier). Whichever predicts the open backdrop about as well and is simpler
    # to trust: the core model must not do worse there.
    model = _fit_shadow_model(depth_t, mask_t, weight, _shadow_candidates(mask_t))
    core = product & ~undecided
    if core.any() and (core != product).any():
        core_t = _resize(core.astype(np.float32), tw, th)
        fit_core = ~_dilate(core, 1) & neutral & (k < 1.05)
        w_core = (_resize(fit_core.astype(np.float32), tw, th) > 0.99).astype(np.float32)
        cands = _shadow_candidates(core_t)
        alt = _fit_shadow_model(depth_t, core_t, w_core, cands)
        if alt.terms:
            res = np.abs(depth_t - alt.predict(core_t))
            w_core *= res < max(SM_BAD, 3.0 * alt.rms)
            alt = _fit_shadow_model(depth_t, core_t, w_core, cands)
            if _rms(depth_t - alt.predict(core_t), weight) < model.rms + SM_CORE_SLACK:
                model, mask_t, fit_px = alt, core_t, fit_core
    removed = np.zeros(product.shape, bool)
    model.pred_w = _resize(model.predict(mask_t), ww, wh)
    if model.explained < SM_FIT_MIN or not model.terms:
        return mask, removed, model

    cand = product & undecided & ~edges
    n, labels = cv2.connectedComponents(cand.astype(np.uint8), connectivity=4)
    if n <= 1:
        return mask, removed, model
    hp = _highpass(work) if hp is None else hp
    ref_tex = max(float(_median(hp[outside])) if outside.any() else sigma, 0.5)
    # a saturated white backdrop has no noise; shadows on it do (JPEG, sensor): compare
    # with the texture of the open backdrop's own shadows when there are enough
    shaded = fit_px & (depth > SHADOW_DEPTH_MIN + 0.02)
    if shaded.sum() >= 32:
        ref_tex = max(ref_tex, float(_median(hp[shaded])))
    ids = labels.ravel().astype(np.intp)
    size = np.bincount(ids, minlength=n)
    stats = _region_means(ids, n, [chroma_d, hp, depth])
    chroma_m, tex, depth_m = stats[:, 0], stats[:, 1], stats[:, 2]
    plausible = (
        (size >= 8)
        & (chroma_m < _neutral_limit(ref_chroma, sigma, depth_m, REGION_CHROMA))
        & (tex < FILL_TEX * ref_tex)
    )
    plausible[0] = False

    def without(removal: np.ndarray) -> np.ndarray:
        # the predicted shadow with ``removal`` cut out of the silhouette (a no-op where
        # the silhouette is the core, which never contains the candidates)
        sil = np.maximum(mask_t - _resize(removal, tw, th), 0.0)
        return _resize(model.predict(sil), ww, wh)

    def explained(removal: np.ndarray, lo_removal: np.ndarray | None) -> np.ndarray:
        hi = without(removal)
        lo = hi if lo_removal is None else without(lo_removal)
        err = np.maximum(np.maximum(lo - depth, depth - hi), 0.0)
        bad = np.bincount(ids, (err > SM_BAD).ravel(), n) / np.maximum(size, 1)
        e_m = np.bincount(ids, err.ravel(), n) / np.maximum(size, 1)
        pred = np.bincount(ids, lo.ravel(), n) / np.maximum(size, 1)
        close = (e_m < SM_TOL) & (bad < SM_BAD_FRAC)
        # a deep shadow seen through an opening: the model, a blurred and shifted
        # silhouette, is off by more per pixel there (a rim a pixel out, a penumbra of
        # another width) but still predicts its mean depth
        match = np.abs(pred - depth_m) < SM_MATCH * depth_m
        close |= (e_m < SM_TOL_ROUGH) & (bad < SM_BAD_ROUGH) & match
        return plausible & close & (pred > SM_MIN_PRED)

    # The shadow a region receives depends on which other regions are openings too. First
    # a bracket (the prediction with every candidate removed, and with none), then the
    # self-consistent set: each region must be explained with itself and the others removed.
    neutral = _neutral_shadows(
        labels, n, size, product, plausible, chroma_m, ref_chroma, stats[:, 2]
    )
    ok = explained(np.zeros_like(mask), cand.astype(np.float32)) | neutral
    for _ in range(SM_ROUNDS):
        new = ok & (explained(ok[labels].astype(np.float32), None) | neutral)
        if (new == ok).all():
            break
        ok = new
    removed = ok[labels]
    out = mask.copy()
    out[removed] = 0.0
    model.pred_w = without(removed.astype(np.float32))
    return out, removed, model


NEUTRAL_TOL = 1.5  # levels: max mean chromaticity offset of a shadow beyond the backdrop's
NEUTRAL_DEPTH = 0.6  # deeper than this, a neutral region is more likely a dark product part
NEUTRAL_RIM = 0.2  # min (backdrop pixels along the region's border) / (region pixels)


def _neutral_shadows(
    labels: np.ndarray,
    n: int,
    size: np.ndarray,
    product: np.ndarray,
    plausible: np.ndarray,
    chroma_m: np.ndarray,
    ref_chroma: float,
    depth_m: np.ndarray,
) -> np.ndarray:
    """Per label: a shadow the model missed, by its exact chromaticity and its shape.

    A contact shadow under an ottoman's or shelf's legs is often not predicted (the fit
    saw too little open shadow, or the silhouette's base already swallowed it), so the
    model test keeps it. But a shadow only scales the backdrop: averaged over a region,
    its chromaticity offset from ``B`` is the backdrop's own noise level, far tighter than
    the per-pixel tolerance of ``plausible``, while a grey fabric or a tinted metal is a
    few levels off. A grey product on a neutral backdrop is exactly neutral too, so the
    region must also look like something lying on the floor next to the product: a large
    share of its pixels border the open backdrop (a thin band or fringe), where a product
    face is a compact body walled by other product parts. On the dev sets the rim share
    alone separated every harmful case (grey boxes and cabinets on white) from the shadows
    (measured: BENCHMARKS.md, Design measurements once kept in docstrings).
    """
    grown = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    rim = ~product & (grown > 0)
    n_rim = np.bincount(grown[rim], minlength=n)
    ok = plausible & (chroma_m < ref_chroma + NEUTRAL_TOL)
    ok &= (depth_m > SHADOW_DEPTH_MIN) & (depth_m < NEUTRAL_DEPTH)
    ok &= (n_rim >= 4) & (n_rim >= NEUTRAL_RIM * size)
    ok[0] = False
    return ok
