"""Hole masks for training an inpainter, and the weighted boundary loss's weight map."""

from __future__ import annotations

import cv2
import numpy as np

# The weighted boundary loss of Ku et al. 2023 (§5.3.1): the paper's fixed values.
WBL = (0.9, 0.1)


def free_form_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A free-form hole (bool HxW) as in Yu et al. 2019 (DeepFill v2), the masks the seed trains
    with: one to four brush strokes of 4–12 vertices, each stroke a polyline of thick lines
    with round joints turning by about 2π/5, its segments about a eighth of the diagonal long.
    The constants are the DeepFill v2 paper's (``brush_stroke_mask`` in its code), scaled to
    the image's size (they were given for 256²)."""
    scale = np.hypot(height, width) / np.hypot(256, 256)
    min_width, max_width = 12 * scale, 40 * scale
    mean_angle, angle_range = 2 * np.pi / 5, 2 * np.pi / 15
    average_radius = np.hypot(height, width) / 8
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 5)):
        vertices = int(rng.integers(4, 13))
        low, high = mean_angle - angle_range, mean_angle + angle_range
        angles = rng.uniform(low, high, vertices)
        angles[::2] = 2 * np.pi - angles[::2]  # alternate turns: strokes wiggle, not spiral
        x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
        thickness = max(1, int(rng.uniform(min_width, max_width)))
        for angle in angles:
            length = np.clip(rng.normal(average_radius, average_radius / 2), 0, 2 * average_radius)
            nx = float(np.clip(x + length * np.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * np.sin(angle), 0, height - 1))
            cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, thickness)
            cv2.circle(mask, (int(nx), int(ny)), thickness // 2, 1, -1)
            x, y = nx, ny
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask.astype(bool))


def boundary_band(hole: np.ndarray, radius: int) -> np.ndarray:
    """The pixels within ``radius`` of the hole's edge, on both sides (bool HxW)."""
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    hole8 = hole.astype(np.uint8)
    return cv2.dilate(hole8, disk).astype(bool) & ~cv2.erode(hole8, disk).astype(bool)


def boundary_weights(
    hole: np.ndarray, weights: tuple[float, float] = WBL, radius: int | None = None
) -> np.ndarray:
    """The weighted boundary loss's pixel weights (float32 HxW): ``weights[0]``
    (λ_boundary) on the band around the hole's edge, ``weights[1]`` (λ_non-boundary)
    everywhere else. The paper does not give the band's width; ``radius`` defaults to 1/64
    of the image's shorter side (4 px at 256²: a few edge widths of the σ = 2 Canny edges the
    edge model draws)."""
    if radius is None:
        radius = max(1, min(hole.shape) // 64)
    band = boundary_band(hole, radius)
    return np.where(band, np.float32(weights[0]), np.float32(weights[1]))
