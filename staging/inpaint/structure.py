"""``structure``: structure-guided anisotropic diffusion, the weights-free default.

Why this method (measured on product-shaped holes in 40 IKEA rooms at 512 px; see
``staging eval inpaint``): for holes a fifth to two fifths of the image high, no weights-free
method reconstructs the lost texture, so what scores (hole PSNR/SSIM, and what looks least
wrong) is a fill that is smooth where the scene is smooth and that carries on the lines that
enter the hole. Rooms are made of horizontal structure (floor/wall junctions, skirting boards,
shelves, table tops, planks) plus oriented edges of furniture, so:

1. the **structure tensor** of the known pixels around the hole (Gaussian-smoothed outer
   products of the gradient) gives, at the hole's edge, the local isophote direction and how
   coherent it is; its three components are interpolated harmonically into the hole;
2. the fill solves a **weighted graph Laplace equation** (8-neighbour stencil, Dirichlet values
   from the known pixels): each edge's conductance is large when the edge runs along the
   interpolated isophote (``|cos|^power``) in coherent regions, and falls back to a
   horizontally biased diffusion (vertical conductance ``vertical``) where there is no
   dominant direction. The sparse system (one unknown per hole pixel, three colour right-hand
   sides) is solved exactly with one sparse LU factorisation.

It beats OpenCV's Telea by about +1.5 dB hole PSNR at about 0.2 s per 512-px room; isotropic
harmonic filling gives +0.7 dB, horizontally biased harmonic filling +1.2 dB, PatchMatch-style
texture copying and ``cv2.xphoto`` FSR score below Telea on these holes (texture in the wrong
place costs more than blur).
"""

from __future__ import annotations

import cv2
import numpy as np

from staging.inpaint.base import Inpainter, hole_bbox

_LUMA = np.array([0.299, 0.587, 0.114])
# Half the 8-neighbourhood (the other half is the same edges seen from the other end).
_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


def solve_laplace(
    values: np.ndarray, hole: np.ndarray, conductance: dict[tuple[int, int], np.ndarray]
) -> np.ndarray:
    """Fill ``hole`` in ``values`` (float HxWxC) with the solution of the weighted Laplace
    equation whose edge weights are ``conductance[(dy, dx)]`` (per-pixel maps; an edge's weight
    is the mean of its two ends, so the system is symmetric positive definite)."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    h, w = hole.shape
    n = int(hole.sum())
    index = np.full((h, w), -1, np.int64)
    index[hole] = np.arange(n)
    channels = values.shape[2]
    diagonal = np.zeros(n)
    rhs = np.zeros((n, channels))
    rows, cols, weights = [], [], []
    for (dy, dx), cmap in conductance.items():
        p_sl = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
        q_sl = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
        p, q = index[p_sl], index[q_sl]
        edge = 0.5 * (cmap[p_sl] + cmap[q_sl])
        p_in, q_in = p >= 0, q >= 0
        for a, b, a_in, b_in, b_values in (
            (p, q, p_in, q_in, values[q_sl]),
            (q, p, q_in, p_in, values[p_sl]),
        ):
            diagonal += np.bincount(a[a_in], edge[a_in], minlength=n)
            known = a_in & ~b_in  # b is a Dirichlet value
            for c in range(channels):
                rhs[:, c] += np.bincount(
                    a[known], edge[known] * b_values[..., c][known], minlength=n
                )
            both = a_in & b_in
            rows.append(a[both])
            cols.append(b[both])
            weights.append(-edge[both])
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    weights.append(diagonal)
    matrix = csc_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    out = values.copy()
    out[hole] = splu(matrix).solve(rhs)
    return out


class StructureInpainter(Inpainter):
    """Structure-tensor-guided, horizontally biased diffusion (see the module docstring).

    Args:
        vertical: conductance of vertical edges relative to horizontal ones where the scene
            has no coherent direction (1 = isotropic; rooms favour 0.1).
        power: sharpness of the direction guidance (``|cos(angle)|**power``).
        sigma: Gaussian scale (px) of the structure tensor.
        floor: minimum conductance, so every pixel stays connected to the boundary.
        margin: known pixels around the hole's bounding box used for the structure tensor.
    """

    name = "structure"

    def __init__(
        self,
        vertical: float = 0.1,
        power: float = 32.0,
        sigma: float = 2.0,
        floor: float = 0.01,
        margin: int = 12,
    ):
        if not 0.0 < vertical <= 1.0 or floor <= 0.0 or sigma <= 0.0:
            raise ValueError("need 0 < vertical <= 1, floor > 0 and sigma > 0")
        self.vertical = vertical
        self.power = power
        self.sigma = sigma
        self.floor = floor
        self.margin = margin

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = hole_bbox(hole, self.margin)
        crop = image[y0:y1, x0:x1].astype(np.float64)
        crop_hole = hole[y0:y1, x0:x1]
        vx, vy, coherence = self.isophotes(crop @ _LUMA, crop_hole)
        diagonal = 0.25 * (1.0 + self.vertical)  # mean of the axes' weights, over length^2
        base = {(0, 1): 1.0, (1, 0): self.vertical, (1, 1): diagonal, (1, -1): diagonal}
        conductance = {}
        for dy, dx in _OFFSETS:
            length = float(np.hypot(dy, dx))
            along = np.abs(vx * dx + vy * dy) / length
            guided = (along**self.power + self.floor) / length**2
            conductance[(dy, dx)] = (1.0 - coherence) * base[(dy, dx)] + coherence * guided
        filled = solve_laplace(crop, crop_hole, conductance)
        out = image.copy()
        out[y0:y1, x0:x1] = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
        return out

    def isophotes(
        self, gray: np.ndarray, hole: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit isophote direction (vx, vy) and coherence in [0, 1] at every pixel, from the
        structure tensor of the known pixels, interpolated harmonically into the hole."""
        gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=3)
        # Sobel reaches one pixel: gradients touching the hole are unknown too.
        unknown = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if unknown.all():  # no known gradient at all: no direction to follow
            zeros = np.zeros(hole.shape)
            return np.ones(hole.shape), zeros, zeros
        gx[unknown] = 0.0
        gy[unknown] = 0.0
        size = 2 * int(3 * self.sigma) + 1
        tensor = cv2.GaussianBlur(np.dstack([gx * gx, gx * gy, gy * gy]), (size, size), self.sigma)
        support = cv2.GaussianBlur((~unknown).astype(np.float64), (size, size), self.sigma)
        tensor /= np.maximum(support, 1e-6)[..., None]
        ones = np.ones(hole.shape)
        tensor = solve_laplace(tensor, unknown, {(0, 1): ones, (1, 0): ones})
        a, b, c = tensor[..., 0], tensor[..., 1], tensor[..., 2]
        spread = np.sqrt(np.maximum(0.25 * (a - c) ** 2 + b * b, 0.0))
        small = 0.5 * (a + c) - spread  # the smaller eigenvalue: along the isophote
        coherence = (2.0 * spread / (a + c + 1e-9)) ** 2
        vx, vy = b, small - a  # eigenvector of the smaller eigenvalue
        degenerate = np.abs(vx) + np.abs(vy) < 1e-9
        vx = np.where(degenerate, small - c, vx)
        vy = np.where(degenerate, b, vy)
        norm = np.hypot(vx, vy) + 1e-12
        return vx / norm, vy / norm, np.clip(coherence, 0.0, 1.0)
