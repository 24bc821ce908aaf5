"""Segmentation quality metrics: IoU, MAE, F-beta and the DAVIS boundary F-measure.

All functions take a predicted foreground probability (float HxW in [0, 1]) and a ground
truth that may be a bool mask, a float alpha in [0, 1] or a uint8 alpha in [0, 255]. The
binary ground truth is ``alpha >= 0.5``; MAE is measured against the soft alpha.
"""

from __future__ import annotations

import cv2
import numpy as np

BETA2 = 0.3  # beta^2 of the salient-object literature (Achanta et al. 2009)
BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal (DAVIS, Perazzi et al. 2016)

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def as_alpha(x: np.ndarray) -> np.ndarray:
    """A bool / uint8 / float mask as float32 alpha in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., 0]
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float32) / 255.0
    return np.clip(x.astype(np.float32), 0.0, 1.0)


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner boundary of a bool mask (the image frame is not a boundary)."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, _CROSS, borderType=cv2.BORDER_REPLICATE)
    return (m - eroded).astype(bool)


def boundary_tolerance(shape: tuple[int, ...], tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Matching distance in pixels: ``round(tolerance * diagonal)``, at least 1."""
    h, w = shape[:2]
    return max(1, int(round(tolerance * float(np.hypot(h, w)))))


def _within(boundary: np.ndarray, radius: int) -> np.ndarray:
    """Pixels whose Euclidean distance to the nearest ``boundary`` pixel is <= radius."""
    if not boundary.any():
        return np.zeros(boundary.shape, bool)
    # distanceTransform measures the distance to the nearest zero pixel.
    inv = np.where(boundary, 0, 255).astype(np.uint8)
    dist = cv2.distanceTransform(inv, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= radius + 1e-3


def boundary_f_measure(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE
) -> float:
    """DAVIS contour accuracy F of two bool masks (boundaries matched within a tolerance)."""
    pb = mask_boundary(pred)
    gb = mask_boundary(gt)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    radius = boundary_tolerance(pred.shape, tolerance)
    precision = np.count_nonzero(pb & _within(gb, radius)) / n_p
    recall = np.count_nonzero(gb & _within(pb, radius)) / n_g
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def segmentation_metrics(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict:
    """IoU, MAE, F-beta (beta^2 = 0.3) and boundary F of a probability map against ground truth.

    Args:
        prob: predicted foreground probability, float HxW in [0, 1] (bool/uint8 accepted).
        gt: ground truth: bool mask, float alpha in [0, 1] or uint8 alpha; same HxW.
        threshold: the prediction is binarised as ``prob >= threshold``; gt as ``gt >= 0.5``.

    Returns:
        ``{"iou", "mae", "fbeta", "boundary_f"}`` as floats. Empty gt and empty prediction
        count as a perfect match (1.0 for iou, fbeta and boundary_f).
    """
    p = as_alpha(prob)
    g = as_alpha(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in size")
    pm = p >= threshold
    gm = g >= 0.5
    tp = np.count_nonzero(pm & gm)
    n_p = np.count_nonzero(pm)
    n_g = np.count_nonzero(gm)
    union = n_p + n_g - tp
    iou = 1.0 if union == 0 else tp / union
    if n_p == 0 and n_g == 0:
        fbeta = 1.0
    elif tp == 0:
        fbeta = 0.0
    else:
        precision, recall = tp / n_p, tp / n_g
        fbeta = (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
    mae = float(np.abs(p - g).mean(dtype=np.float64))
    return {
        "iou": float(iou),
        "mae": mae,
        "fbeta": float(fbeta),
        "boundary_f": boundary_f_measure(pm, gm),
    }


def mean_metrics(rows: list[dict]) -> dict:
    """Mean of each metric over per-image metric dicts."""
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
