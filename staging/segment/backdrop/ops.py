"""Array primitives the backdrop matting's steps share: robust medians, resizing, 3x3
maxima and high-pass, normalised convolution, binary morphology, per-region means, and the
neutrality bound that tells a shadow (it only scales the backdrop) from a tinted face."""

from __future__ import annotations

import cv2
import numpy as np

NEUTRAL_CHROMA = (3.0, 1.5)  # (levels, sigmas), the larger: tint a shadow adds to the backdrop
NEUTRAL_DEEP = 0.08  # ... plus this share of its depth, in levels (deep shadows pick up tint)
REGION_CHROMA = (1.0, 1.0)  # the same for a region's mean, in the hole and shadow-model tests


def _neutral_limit(
    ref_chroma: float,
    sigma: float,
    depth: np.ndarray,
    tol: tuple[float, float] = NEUTRAL_CHROMA,
) -> np.ndarray:
    """Largest chromaticity offset (levels) a shadow of ``depth`` (fraction of B) may show.

    A shadow only scales the backdrop, so its offset from the ``k * B`` line is the open
    backdrop's own (``ref_chroma``, noise included) plus a little tint that grows with
    depth. Per-pixel and marker tests need ~3 levels (or 1.5 sigma) of slack for the noise.
    The mean over a region is steadier: where :func:`_fill_enclosed` decides whether an
    enclosed region is a hole under a shadow and :func:`_model_shadows` whether a region
    is explained as shadow, and where :func:`_peel_penumbrae` takes a region for a penumbra
    (a cream lamp shade, a glass grinder's body), 1 level (or 1 sigma) tells a faintly
    tinted white or grey face from a shadow. The region tests of :func:`_edge_enclosed`
    measured no better at 1 level, and the per-pixel neutrality of the peel worse.
    """
    return ref_chroma + max(tol[0], tol[1] * sigma) + NEUTRAL_DEEP * 255.0 * depth


def _median(values: np.ndarray, axis=None):
    """Median of a large sample from an evenly strided subset (a few thousand values are plenty
    for a robust level estimate, and a full partition of every pixel costs milliseconds)."""
    step = max(1, len(values) // 8192)
    return np.median(values[::step], axis=axis)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[1] == w and img.shape[0] == h:
        return img
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def _fit_size(h: int, w: int, side: int) -> tuple[int, int]:
    s = min(1.0, side / max(h, w))
    return max(1, int(round(h * s))), max(1, int(round(w * s)))


def _max3(a: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the 3 channels (numpy's ``.max(2)`` is slow on a size-3 axis)."""
    return cv2.max(cv2.max(a[..., 0], a[..., 1]), a[..., 2])


def _highpass(work: np.ndarray) -> np.ndarray:
    """Fine texture: what is left after a small blur (a smooth shadow gradient is not)."""
    return _max3(cv2.absdiff(work, cv2.GaussianBlur(work, (5, 5), 1.0)))


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel dot product of two HxWx3 float32 images (HxW)."""
    return cv2.transform(cv2.multiply(a, b), np.ones((1, 3), np.float32))


def _normconv(
    values: np.ndarray, weight: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Gaussian average of ``values`` (HxWxC) with weights (HxW): (mean, support)."""
    k = int(2 * round(2.5 * sigma) + 1)
    den = cv2.GaussianBlur(weight, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
    num = cv2.GaussianBlur(
        values * weight[..., None], (k, k), sigma, borderType=cv2.BORDER_REPLICATE
    )
    if num.ndim == 2:
        num = num[..., None]
    return num / np.maximum(den, 1e-6)[..., None], den


def _dilate(m: np.ndarray, r: int = 1) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m.astype(np.uint8), k).astype(bool)


def _erode(m: np.ndarray, r: int = 1) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.erode(m.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE).astype(bool)


def _region_means(ids: np.ndarray, n: int, planes: list[np.ndarray]) -> np.ndarray:
    """Mean of each HxW plane over each label (n x len(planes))."""
    ids = np.asarray(ids, dtype=np.intp)  # bincount would cast it once per plane
    counts = np.maximum(np.bincount(ids, minlength=n), 1).astype(np.float64)
    return np.stack([np.bincount(ids, p.ravel(), n) / counts for p in planes], 1)


def _shadow_evidence(work: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per pixel against the background ``B``: the factor ``k`` of ``I ~ k*B``, the
    chromaticity offset from it (levels), the darkening ``1 - k`` clipped to [0, 1], and the
    colour distance from ``B`` (levels)."""
    diff = work - B
    k = _dot(work, B) / np.maximum(_dot(B, B), 1.0)
    chroma = work - k[..., None] * B
    return k, np.sqrt(_dot(chroma, chroma)), np.clip(1.0 - k, 0.0, 1.0), np.sqrt(_dot(diff, diff))


def _median_residual(work: np.ndarray) -> np.ndarray:
    """Fine texture that a smooth ramp does not have: the residual of a 3x3 median (which
    passes monotonic ramps, unlike the small blur of :func:`_highpass`)."""
    return _max3(cv2.absdiff(work, cv2.medianBlur(work, 3)))
