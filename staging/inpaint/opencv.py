"""OpenCV's classic inpainting: Telea's fast marching and Navier-Stokes (Bertalmio et al.).

Both propagate colour from the hole's edge inwards by a few pixels' radius: fine for scratches
and thin gaps, smeared for large holes. They are here as baselines and as the cheapest option.
"""

from __future__ import annotations

import cv2
import numpy as np

from staging.inpaint.base import Inpainter, hole_bbox

_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class OpenCVInpainter(Inpainter):
    """``cv2.inpaint`` with the Telea (``telea``) or Navier-Stokes (``ns``) method."""

    def __init__(self, method: str = "telea", radius: float = 5.0):
        if method not in _FLAGS:
            raise ValueError(f"method must be one of {sorted(_FLAGS)}, not {method!r}")
        self.name = method
        self.method = method
        self.radius = radius

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        # Only the hole's neighbourhood matters: work on a crop (much faster on big images).
        margin = int(np.ceil(self.radius)) + 2
        y0, y1, x0, x1 = hole_bbox(hole, margin)
        out = image.copy()
        mask = hole[y0:y1, x0:x1].astype(np.uint8) * 255
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        out[y0:y1, x0:x1] = cv2.inpaint(crop, mask, self.radius, _FLAGS[self.method])
        return out
