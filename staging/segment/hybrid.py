"""``hybrid``: the weights-free ``catalog`` matting and a saliency net, chosen per image.

The two fail in opposite places (measured on the dev studio shots, see BENCHMARKS.md):
``catalog`` keeps the background seen between chair legs and finds thin parts, but loses the
interior of white products whose outline has gaps; U^2-Net-p fills solid bodies reliably but
fills holes and drops thin legs. Averaging them per pixel only splits the difference (IoU ~0.92
on the tuning and held-out shots); picking the right one *per image* would reach ~0.95 / 0.96.
So this backend runs both and lets a small selector choose, per image, among the catalog map, the
net's map and their average, from features that describe how the two disagree (overlap,
solidity, areas, how much of the catalog mask is near-white, uncertain pixels, parts).

The selector is a 3-way linear softmax fitted by ``scripts/fit_hybrid_selector.py`` on the
tuning shots only (maximising the expected IoU); its constants are below. It needs the net's
weights (``staging models pull u2netp``); without them use ``catalog``.
"""

from __future__ import annotations

import cv2
import numpy as np

from staging.segment.base import Segmenter

FEATURE_NAMES = (
    "overlap",  # IoU of the two masks
    "solidity_catalog",  # mask area / convex hull area
    "solidity_net",
    "area_catalog",  # share of the frame
    "area_net",
    "white_in_catalog",  # share of the catalog mask that is near-white (white products)
    "uncertain_catalog",  # share of pixels with 0.1 < p < 0.9, x10
    "uncertain_net",
    "parts_catalog",  # connected parts of the catalog mask, /10, capped at 1
    "only_catalog",  # pixels only the catalog mask has, share of the union
    "only_net",
)
CHOICES = ("catalog", "net", "average")

# BEGIN FITTED (scripts/fit_hybrid_selector.py)
_MEAN = np.array(
    [
        0.87901,
        0.69076,
        0.74212,
        0.16790,
        0.17401,
        0.30431,
        0.10856,
        0.22734,
        0.28467,
        0.04213,
        0.07886,
    ]
)
_SCALE = np.array(
    [
        0.17072,
        0.25561,
        0.24251,
        0.11437,
        0.11372,
        0.31931,
        0.05889,
        0.18519,
        0.28419,
        0.09768,
        0.14106,
    ]
)
_WEIGHTS = np.array(
    [
        [-0.14168, 0.12196, 0.01971],
        [-0.12361, 0.13826, -0.01465],
        [-0.06956, 0.18745, -0.11789],
        [-0.05818, 0.05419, 0.00400],
        [-0.03743, 0.08067, -0.04324],
        [-0.11013, 0.07825, 0.03188],
        [-0.06766, 0.14742, -0.07975],
        [0.22150, -0.37542, 0.15391],
        [-0.33312, 0.33093, 0.00219],
        [0.00386, -0.13437, 0.13051],
        [0.16879, -0.05456, -0.11423],
        [0.10347, -0.13409, 0.03062],
    ]
)
# END FITTED


def _solidity(mask: np.ndarray) -> float:
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if not contours:
        return 0.0
    hull = cv2.convexHull(np.vstack(contours))
    return float(mask.sum() / max(1.0, cv2.contourArea(hull)))


def selector_features(image: np.ndarray, catalog: np.ndarray, net: np.ndarray) -> np.ndarray:
    """The features of :data:`FEATURE_NAMES` for one image and the two probability maps."""
    ma, mb = catalog >= 0.5, net >= 0.5
    union = max(1, int((ma | mb).sum()))
    white = image.min(axis=2) > 200
    parts = cv2.connectedComponents(ma.astype(np.uint8))[0] - 1
    return np.array(
        [
            (ma & mb).sum() / union,
            _solidity(ma),
            _solidity(mb),
            ma.mean(),
            mb.mean(),
            (white & ma).sum() / max(1, int(ma.sum())),
            ((catalog > 0.1) & (catalog < 0.9)).mean() * 10,
            ((net > 0.1) & (net < 0.9)).mean() * 10,
            min(parts, 10) / 10,
            (ma & ~mb).sum() / union,
            (mb & ~ma).sum() / union,
        ],
        dtype=np.float64,
    )


def choose(features: np.ndarray) -> int:
    """Index into :data:`CHOICES` of the map the selector expects to be best."""
    z = np.append((features - _MEAN) / _SCALE, 1.0)
    return int(np.argmax(z @ _WEIGHTS))


def combine(choice: int, catalog: np.ndarray, net: np.ndarray) -> np.ndarray:
    if choice == 0:
        return catalog
    if choice == 1:
        return net
    return (0.5 * (catalog + net)).astype(np.float32)


class HybridSegmenter(Segmenter):
    """``catalog`` and a saliency net, one of their maps (or the average) chosen per image."""

    name = "hybrid"

    def __init__(self, catalog: Segmenter, net: Segmenter):
        self.catalog = catalog
        self.net = net
        self.last_choice: str | None = None

    def predict(self, image: np.ndarray) -> np.ndarray:
        a = self.catalog.predict(image).astype(np.float32)
        b = self.net.predict(image).astype(np.float32)
        choice = choose(selector_features(image, a, b))
        self.last_choice = CHOICES[choice]
        return combine(choice, a, b)

    def background(self, image: np.ndarray) -> np.ndarray | None:
        # The catalog backdrop fit decontaminates edges exactly; it is right whichever map
        # was chosen (it describes the backdrop, not the product).
        return self.catalog.background(image)
