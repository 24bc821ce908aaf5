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

WORKING_SIDE = 2048
"""The long side big photos are segmented and matted at (twice the 1024 px the networks see):
the maps are enlarged back to the photo's size, whose own pixels the cut-out keeps. Working at
a bounded size keeps a 6000 px photo to seconds instead of a minute (BENCHMARKS.md)."""


class Segmenter(ABC):
    """A segmentation backend. Subclasses implement :meth:`predict` and set :attr:`name`."""

    name: str = "?"
    #: Part of the mask cache's key next to :attr:`name`: change it when the same model starts
    #: answering differently (new pre/post-processing), so no stale cached mask is served.
    cache_tag: str = "1"
    #: A photo with a longer side is shrunk to this before :meth:`predict` and the maps are
    #: enlarged back (:func:`to_photo_size`), so a backend's cost stays bounded. None: the
    #: backend takes any size (a net with a fixed input, which bounds its own costly steps).
    max_side: int | None = WORKING_SIDE

    @abstractmethod
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Foreground probability (float32 HxW in [0, 1]) for an RGB uint8 image."""

    def background(self, image: np.ndarray) -> np.ndarray | None:
        """Optional: the backend's estimate of the clean background (float32 HxWx3, 0..255).

        Backends that model the background (``backdrop``) return it so the cutout can remove the
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
        # Distance to the mask instead of a dilation with a (2r+1)^2 disc: the same pixels, in
        # time that does not grow with the radius (measured: BENCHMARKS.md, Big photos in the
        # Product tab).
        outside = (~self.mask).astype(np.uint8)
        near = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius
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
    image: np.ndarray,
    alpha: np.ndarray,
    background: np.ndarray | None = None,
    max_side: int = WORKING_SIDE,
) -> np.ndarray:
    """Foreground colours F with ``image = alpha*F + (1-alpha)*B`` at soft edges.

    With a known background B (``backdrop`` backend) F is solved per pixel. Otherwise
    pymatting's multi-level foreground estimation (Germer et al. 2020) pulls the colours of
    nearby solid product into the edge, which removes the white or grey halo a plain cutout
    shows on a dark page, and runs faster than a blur fusion of the edge colours (measured:
    BENCHMARKS.md, Design measurements once kept in docstrings).

    The propagation runs at most at ``max_side`` and is enlarged back: only soft edge pixels
    use it (solid ones keep the photo's own pixels), and the colour pulled into an edge from
    the product beside it is smooth, so a 6000 px photo costs what a 2048 px one does.
    """
    from pymatting import estimate_foreground_ml

    from staging.io import at_most

    alpha = np.clip(alpha.astype(np.float32, copy=False), 0.0, 1.0)
    if image.shape[0] * image.shape[1] < 2:  # pymatting divides by zero on a single pixel
        return image.copy()
    small = at_most(image, max_side).astype(np.float64) / 255.0
    propagated = estimate_foreground_ml(small, at_most(alpha, max_side).astype(np.float64))
    propagated = np.round(np.clip(propagated, 0.0, 1.0) * 255).astype(np.uint8)
    if propagated.shape[:2] != image.shape[:2]:
        size = (image.shape[1], image.shape[0])
        propagated = cv2.resize(propagated, size, interpolation=cv2.INTER_LINEAR)
    out = image.copy()  # solid pixels as shot
    edge = alpha < 0.999
    if background is None:
        np.copyto(out, propagated, where=edge[..., None])
        return out
    # A known background: solve F per pixel, blended towards the propagated colour where low
    # alpha makes the division unstable.
    a = alpha[edge][:, None]
    shot, bg = image[edge].astype(np.float32), background[edge].astype(np.float32)
    solved = np.clip((shot - (1 - a) * bg) / np.maximum(a, 1e-3), 0, 255)
    weight = np.clip(a * 2.0, 0, 1)
    out[edge] = np.round(weight * solved + (1 - weight) * propagated[edge]).astype(np.uint8)
    return out


def to_photo_size(
    prob: np.ndarray, background: np.ndarray | None, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The maps of a photo segmented at :data:`WORKING_SIDE`, enlarged (bilinear) to the
    photo's ``shape``; maps already that size are returned as they are."""
    if prob.shape[:2] == tuple(shape):
        return prob, background
    size = (shape[1], shape[0])
    prob = np.clip(cv2.resize(prob, size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    if background is not None:
        background = cv2.resize(background, size, interpolation=cv2.INTER_LINEAR)
    return prob, background


def prepare_matting() -> None:
    """Import pymatting, which compiles its numba kernels at import: about a minute on a
    2-core machine the first time after an install (then cached on disk). A server calls this
    in a background thread at start, so a user's first photo does not wait for it."""
    import pymatting  # noqa: F401
