"""The segmentation interface: one small class per backend, one result type for all.

A backend turns an RGB image into a saliency/alpha probability map. Everything else a user
needs (binary mask at the paper's threshold, a clean RGBA cutout) is derived here, the same way
for every backend, so backends stay small (rembg's "session" idea).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from PIL import Image


class Segmenter(ABC):
    """A segmentation backend. Subclasses implement :meth:`predict` and set :attr:`name`."""

    name: str = "?"
    #: Part of the mask cache's key next to :attr:`name`: change it when the same model starts
    #: answering differently (new pre/post-processing), so no stale cached mask is served.
    cache_tag: str = "1"

    @abstractmethod
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Foreground probability (float32 HxW in [0, 1]) for an RGB uint8 image."""

    def background(self, image: np.ndarray) -> np.ndarray | None:
        """Optional: the backend's estimate of the clean background (float32 HxWx3, 0..255).

        Backends that model the background (``catalog``) return it so the cutout can remove the
        background's colour from edge pixels exactly; others return None.
        """
        return None


@dataclass
class Segmentation:
    """A product segmentation.

    Attributes:
        image: the RGB uint8 input.
        prob: float32 HxW foreground probability (soft alpha) in [0, 1].
        backend: the name of the backend that produced ``prob`` (``auto`` resolved).
        threshold: ``mask = prob >= threshold`` (0.5 in the paper).
        background_estimate: optional float32 HxWx3 clean background, for exact decontamination.
    """

    image: np.ndarray
    prob: np.ndarray
    backend: str
    threshold: float = 0.5
    background_estimate: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def mask(self) -> np.ndarray:
        """Binary product mask (bool HxW)."""
        return self.prob >= self.threshold

    @property
    def mask_image(self) -> Image.Image:
        """The binary mask as a black/white PIL image (for display and PNG export)."""
        return Image.fromarray(self.mask.astype(np.uint8) * 255, mode="L")

    @property
    def prob_image(self) -> Image.Image:
        """The probability map as a greyscale PIL image."""
        return Image.fromarray(np.round(self.prob * 255).astype(np.uint8), mode="L")

    @cached_property
    def alpha(self) -> np.ndarray:
        """The product's alpha for compositing (float32 HxW): ``prob`` kept near the mask only.

        Saliency nets leave faint probabilities (a few percent) all over the background; as
        alpha they would paste a ghost of the whole photo and make the product's bounding box
        the whole frame. Soft edges within a small distance of the mask stay soft.
        """
        if not self.mask.any():
            return np.zeros_like(self.prob)
        radius = max(2, int(round(0.02 * max(self.prob.shape))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        near = cv2.dilate(self.mask.astype(np.uint8), kernel).astype(bool)
        return np.where(near & (self.prob >= 0.05), self.prob, 0.0).astype(np.float32)

    @cached_property
    def foreground(self) -> np.ndarray:
        """Edge-decontaminated product colours (uint8 HxWx3): no background bleeding in."""
        return estimate_foreground(self.image, self.prob, self.background_estimate)

    @cached_property
    def cutout(self) -> Image.Image:
        """RGBA cutout with straight (unpremultiplied) alpha and decontaminated edge colours.

        The alpha is :attr:`alpha` (``prob`` near the mask only), so a saliency net's faint
        background probabilities do not leave a ghost of the photo around the product.
        """
        alpha = np.round(self.alpha * 255).astype(np.uint8)
        rgba = np.dstack([self.foreground, alpha])
        return Image.fromarray(rgba, mode="RGBA")


def estimate_foreground(
    image: np.ndarray, alpha: np.ndarray, background: np.ndarray | None = None
) -> np.ndarray:
    """Foreground colours F with ``image = alpha*F + (1-alpha)*B`` at soft edges.

    With a known background B (``catalog`` backend) F is solved per pixel. Otherwise
    pymatting's multi-level foreground estimation (Germer et al. 2020) pulls the colours of
    nearby solid product into the edge, which removes the white or grey halo a plain cutout
    shows on a dark page (and runs faster than our former blur fusion: 1.2 s vs 3.8 s at
    3000x2000).
    """
    from pymatting import estimate_foreground_ml

    img = image.astype(np.float64) / 255.0
    alpha = np.clip(alpha.astype(np.float64), 0.0, 1.0)
    if img.shape[0] * img.shape[1] < 2:  # pymatting divides by zero on a single pixel
        return image.copy()
    propagated = estimate_foreground_ml(img, alpha)
    if background is not None:
        bg = background.astype(np.float64) / 255.0
        a = np.maximum(alpha, 1e-3)[..., None]
        solved = np.clip((img - (1 - a) * bg) / a, 0, 1)
        # Low alpha makes the division unstable: blend towards the propagated colour there.
        weight = np.clip(alpha * 2.0, 0, 1)[..., None]
        fg = weight * solved + (1 - weight) * propagated
    else:
        fg = propagated
    out = np.where((alpha >= 0.999)[..., None], img, np.clip(fg, 0, 1))  # solid pixels as shot
    return np.round(out * 255).astype(np.uint8)
