"""Staged or un-staged? A weights-free test for "product in a scene" vs "product on a plain
background" (the paper's split of a catalog into solid-background and staged images, §3-4).

The idea: a plain studio background (white, pastel, grey, a gradient sweep, a soft floor
shadow) is *smooth*. Along the image border, where the product usually is not, a low-order
colour surface explains almost every pixel; a room, a street or a garden does not. We measure
that, plus a few cues a scene has and a backdrop lacks, on a small copy of the image:

==================  ==========================================================================
feature             meaning
==================  ==========================================================================
``border_fit``      fraction of border pixels within ``_INLIER_DE`` (CIE76 ΔE) of a quadratic
                    Lab surface fitted robustly to the border
``border_resid``    log(1 + median ΔE of all border pixels to that surface)
``bg_noise``        log(1 + RMS ΔE of the inliers): sensor noise vs wallpaper/wood texture
``bg_area``         fraction of the image within ``_INLIER_DE`` of the surface and connected to
                    the border: how much of the picture the backdrop explains
``border_edges``    Canny edge density in the border band
``border_colors``   log(number of Lab boxes needed to cover 95% of the border pixels)
``border_chroma``   log(1 + median chroma of the border): plain backdrops are rarely saturated
``border_lines``    total length of long straight lines (Hough) that reach the border band,
                    per unit of perimeter: floor/wall/shelf geometry of a room
==================  ==========================================================================

The features go through a small logistic model whose weights were fitted offline by
``scripts/fit_staged_classifier.py`` (see the comment at :data:`_WEIGHTS`). Only four carry
weight (``border_fit``, ``border_resid``, ``bg_noise``, ``border_edges``); the others are
still reported in :attr:`SceneVerdict.features` (except ``border_lines``, the one costly
feature, which is skipped while its weight is zero). Everything runs on a copy whose long
side is ``_WORK_SIZE`` px, so the cost is about constant, whatever the photo's size.

Known failure modes: a product that fills the whole frame (its own pattern is the border)
reads as staged; a very bare, white, minimalist room reads as un-staged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

_WORK_SIZE = 160  # long side of the working copy, px
_BAND = 0.06  # border band width, as a fraction of the short side
_INLIER_DE = 6.0  # ΔE (Lab) under which a pixel "is" background
_COLOR_BOX = (8.0, 8.0, 8.0)  # Lab box size (L, a, b) for counting border colours
_LINE_MIN = 0.25  # a "long" line is at least this fraction of the short side

FEATURE_NAMES: tuple[str, ...] = (
    "border_fit",
    "border_resid",
    "bg_noise",
    "bg_area",
    "border_edges",
    "border_colors",
    "border_chroma",
    "border_lines",
)

# Logistic model on standardised features: score = sigmoid(bias + sum(w * (f - mean) / scale)).
# Fitted by scripts/fit_staged_classifier.py (L2 = 1, class-balanced logistic regression by
# Newton's method, with sign constraints: a feature may only push the way its meaning says, and
# one that would get the wrong sign is dropped, i.e. weight 0) on the training part (~80%,
# md5(file name) % 5 != 0) of: the IKEA product shots (un-staged), the same shots with their
# white backdrop recoloured to pastel / grey / studio colour / gradient / vignette backdrops
# with soft floor shadows (un-staged), the IKEA room scenes plus random crops of them and the
# clearly scene-like U^2-Net test photos (staged). Checked on the validation part (measured:
# BENCHMARKS.md, Staged vs un-staged).
_FEATURE_MEAN = np.array([0.8854, 0.7025, 0.6897, 0.5771, 0.0293, 1.2603, 1.6383, 0.1008])
_FEATURE_SCALE = np.array([0.2230, 0.8286, 0.4764, 0.2389, 0.0613, 1.3432, 1.4821, 0.2288])
_WEIGHTS = np.array([-2.8376, 0.7919, 2.5898, 0.0, 2.0496, 0.0, 0.0, 0.0])
_BIAS = -6.1060


@dataclass(frozen=True)
class SceneVerdict:
    """Is an image staged (product in a scene)? The verdict of :func:`classify_staged`, not the
    staged result (that is :class:`staging.result.Staged`).

    Truthy when staged, so ``if engine.is_staged(img):`` reads naturally.

    Attributes:
        staged: the verdict (``score >= 0.5``).
        confidence: probability that the verdict is right, ``max(score, 1 - score)`` in
            ``[0.5, 1]``.
        score: probability that the image is staged, in ``[0, 1]``.
        features: the hand-built features the score was computed from (see module docs).
    """

    staged: bool
    confidence: float
    score: float
    features: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.staged


StagedVerdict = SceneVerdict  # the former name, easily confused with the result ``Staged``


def classify_staged(image: np.ndarray) -> SceneVerdict:
    """Tell a staged image (scene) from an un-staged one (plain/solid/gradient backdrop).

    Args:
        image: RGB uint8 array ``(H, W, 3)``.
    """
    feats = staged_features(image)
    # A feature the model does not use may be skipped; its mean contributes nothing.
    x = np.array([feats.get(n, m) for n, m in zip(FEATURE_NAMES, _FEATURE_MEAN, strict=True)])
    z = _BIAS + float(np.dot(_WEIGHTS, (x - _FEATURE_MEAN) / _FEATURE_SCALE))
    score = 1.0 / (1.0 + math.exp(-min(max(z, -50.0), 50.0)))
    staged = score >= 0.5
    return SceneVerdict(
        staged=staged,
        confidence=score if staged else 1.0 - score,
        score=score,
        features=feats,
    )


def _working_copy(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    scale = _WORK_SIZE / max(h, w)
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """Float32 CIE Lab (L in 0..100, a/b centred on 0) from uint8 RGB."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


def _design(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Quadratic surface basis [1, x, y, x², xy, y²] on coordinates in [-1, 1]."""
    return np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)


def _fit_border_surface(lab_border: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust quadratic Lab surface on border pixels: start from the median colour, then a
    few rounds of least squares on the inliers. Returns (coefficients 6x3, ΔE per pixel)."""
    coef = np.zeros((basis.shape[1], 3), np.float64)
    coef[0] = np.median(lab_border, axis=0)
    de = np.linalg.norm(lab_border - basis @ coef, axis=1)
    for _ in range(3):
        inl = de < max(_INLIER_DE * 1.5, float(np.percentile(de, 30)))
        if inl.sum() < basis.shape[1] * 4:
            break
        b = basis[inl]
        coef = np.linalg.solve(b.T @ b + 1e-6 * np.eye(b.shape[1]), b.T @ lab_border[inl])
        de = np.linalg.norm(lab_border - basis @ coef, axis=1)
    return coef, de


def staged_features(image: np.ndarray, *, all_features: bool = False) -> dict[str, float]:
    """The hand-built features of :func:`classify_staged` (names in :data:`FEATURE_NAMES`).

    The Hough-line feature is the only costly one; it is computed only when the model
    uses it (non-zero weight) or when ``all_features`` is set (the fitting script does).
    """
    rgb = _working_copy(image)
    h, w = rgb.shape[:2]
    lab = _to_lab(rgb)
    band = max(2, round(_BAND * min(h, w)))

    border = np.zeros((h, w), bool)
    border[:band] = border[-band:] = True
    border[:, :band] = border[:, -band:] = True

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xs = (xx / max(w - 1, 1)) * 2.0 - 1.0
    ys = (yy / max(h - 1, 1)) * 2.0 - 1.0
    lab_b = lab[border].astype(np.float64)
    basis_b = _design(xs[border], ys[border]).astype(np.float64)
    coef, de_b = _fit_border_surface(lab_b, basis_b)

    inl_b = de_b < _INLIER_DE
    border_fit = float(inl_b.mean())
    border_resid = math.log1p(float(np.median(de_b)))
    bg_noise = math.log1p(float(np.sqrt(np.mean(de_b[inl_b] ** 2)))) if inl_b.any() else 3.0

    # Extrapolate the surface over the whole image (clipped to the border's colour range, so a
    # quadratic cannot run away in the middle) and keep the agreeing region that touches the
    # border.
    model = (_design(xs.ravel(), ys.ravel()) @ coef.astype(np.float32)).reshape(h, w, 3)
    lo, hi = lab_b.min(axis=0), lab_b.max(axis=0)
    model = np.clip(model, lo.astype(np.float32), hi.astype(np.float32))
    agree = (np.linalg.norm(lab - model, axis=2) < _INLIER_DE).astype(np.uint8)
    n, labels = cv2.connectedComponents(agree, connectivity=4)
    touching = np.unique(labels[border & (agree > 0)])
    touching = touching[touching > 0]
    bg_area = float(np.isin(labels, touching).mean()) if touching.size else 0.0

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, 40, 120)
    border_edges = float((edges[border] > 0).mean())

    q = np.floor(lab_b / np.array(_COLOR_BOX)).astype(np.int64)
    keys = (q[:, 0] + 64) * 1_000_000 + (q[:, 1] + 64) * 1_000 + (q[:, 2] + 64)
    _, counts = np.unique(keys, return_counts=True)
    counts = np.sort(counts)[::-1]
    n_colors = int(np.searchsorted(np.cumsum(counts), 0.95 * counts.sum()) + 1)
    border_colors = math.log(n_colors)

    chroma = np.hypot(lab_b[:, 1], lab_b[:, 2])
    border_chroma = math.log1p(float(np.median(chroma)))

    feats = {
        "border_fit": border_fit,
        "border_resid": border_resid,
        "bg_noise": bg_noise,
        "bg_area": bg_area,
        "border_edges": border_edges,
        "border_colors": border_colors,
        "border_chroma": border_chroma,
    }
    if all_features or _WEIGHTS[FEATURE_NAMES.index("border_lines")] != 0.0:
        feats["border_lines"] = _border_lines(edges, border)
    return feats


def _border_lines(edges: np.ndarray, border: np.ndarray) -> float:
    """Total length of long straight edge segments that reach the border band, per unit of
    perimeter."""
    h, w = edges.shape
    short = min(h, w)
    lines = cv2.HoughLinesP(
        edges,
        rho=1,
        theta=np.pi / 180,
        threshold=max(10, int(_LINE_MIN * short * 0.6)),
        minLineLength=_LINE_MIN * short,
        maxLineGap=2,
    )
    total = 0.0
    if lines is not None:
        for x1, y1, x2, y2 in lines.reshape(-1, 4):
            if border[y1, x1] or border[y2, x2]:
                total += math.hypot(x2 - x1, y2 - y1)
    return total / (2.0 * (h + w))
