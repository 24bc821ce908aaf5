"""Step 3 of prompt staging: the edge image that conditions ControlNet.

Taboola's pipeline runs Canny on the placed product and *reinforces the contour with the
mask*: Canny alone misses the outline wherever the product's colour is close to the filler
around it (a white shirt on white), and a gap in the outline is exactly where an inpainting
model starts "continuing" the product into the background. Drawing the mask's contour closes
those gaps. Edges are kept only on and inside the product: the filler around it carries no
information, and edges there would only constrain the background for no reason.

The image follows the ``lllyasviel/control_v11p_sd15_canny`` convention: white edges on black,
RGB uint8.
"""

from __future__ import annotations

import cv2
import numpy as np

CANNY_LOW = 100
CANNY_HIGH = 200
"""The thresholds the Canny ControlNet was trained with (lllyasviel's annotator defaults)."""


def contour_width(shape: tuple[int, ...]) -> int:
    """Outline thickness: 1 px up to 512 px short side, then growing with the image, so it
    survives the downscale to the model's working size."""
    return max(1, int(round(min(shape[:2]) / 512)))


def canny_edges(image: np.ndarray, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> np.ndarray:
    """Canny edges of an RGB uint8 image as a bool mask (on the luminance, lightly denoised
    so JPEG blocks and sensor noise do not become edges)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray, (3, 3), 0)
    return cv2.Canny(gray, low, high) > 0


def mask_contour(alpha: np.ndarray, width: int | None = None) -> np.ndarray:
    """The outline of ``alpha >= 0.5`` as a bool mask, ``width`` px thick (drawn inside)."""
    inside = (alpha >= 0.5).astype(np.uint8)
    out = np.zeros(alpha.shape, np.uint8)
    if not inside.any():
        return out.astype(bool)
    contours, _ = cv2.findContours(inside, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, 1, width or contour_width(alpha.shape))
    return out.astype(bool)


def control_image(
    image: np.ndarray,
    alpha: np.ndarray,
    low: int = CANNY_LOW,
    high: int = CANNY_HIGH,
    reinforce: bool = True,
) -> np.ndarray:
    """The ControlNet conditioning image for a placed product: RGB uint8, white edges on black.

    Args:
        image: the canvas with the product placed on it (RGB uint8).
        alpha: the product's alpha on that canvas (float32 HxW).
        low, high: Canny hysteresis thresholds.
        reinforce: also draw the mask contour (Taboola's optional step, on by default).
    """
    inside = alpha >= 0.5
    # A 2 px margin keeps the Canny response of the product's own outline, which sits on
    # the transition pixels just outside a hard mask.
    near = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    edges = canny_edges(image, low, high) & near
    if reinforce:
        edges |= mask_contour(alpha)
    return np.repeat((edges * np.uint8(255))[..., None], 3, axis=2)


def resize_control(control: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an edge image and make it binary again.

    Area averaging keeps every thin edge as a grey line when shrinking; a 1 px edge shrunk
    by a factor ``f`` leaves at least ``1 / (2 f)`` of its intensity in the destination pixel
    it overlaps most (it may straddle two), so thresholding just below that brings it back
    to white: a 1 px edge at 1080 px is still an edge at 512 px (nearest-neighbour would drop
    every other one).
    """
    if control.shape[1] == width and control.shape[0] == height:
        return control
    factor = max(control.shape[1] / width, control.shape[0] / height)
    if factor > 1:
        small = cv2.resize(control, (width, height), interpolation=cv2.INTER_AREA)
        threshold = min(128.0, 0.9 * 255 / (2 * factor))
    else:
        small = cv2.resize(control, (width, height), interpolation=cv2.INTER_LINEAR)
        threshold = 128.0
    return np.where(small >= threshold, 255, 0).astype(np.uint8)
