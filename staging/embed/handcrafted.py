"""The weights-free default embedder: shape, gradient, texture and colour descriptors, fused.

Works on a fresh offline machine (numpy, OpenCV and scikit-image only). The product is cropped
to its mask, squared and put on white (:func:`~staging.embed.base.product_crop`), then seven
groups of classic descriptors are computed:

=========  ===============================================================  ======
group      descriptors                                                      weight
=========  ===============================================================  ======
hog        HOG (Dalal & Triggs 2005) of the grey crop at 96/64/32 px         1
           (cells 12/8/8 px)
phog       pyramid histogram of oriented gradients (Bosch et al. 2007),     1
           levels 0-3, 12 bins
gist       GIST-like Gabor energy (Oliva & Torralba 2001), 4 scales x 8     0.25
           orientations on a 4x4 grid
shape      silhouette thumbnail 8x8, radial profile (36 angles), shape      2
           scalars (aspect ratio, fill, solidity, compactness) and Hu
           moments as RBF codes, GIST of the mask
texture    uniform LBP histograms (P,R = 16,2 and 24,3) and a global         2
           gradient-orientation histogram, inside the mask
fine       uniform LBP (8,2) of the eroded product interior at 256 px        0.5
           (material: pile vs weave, fabric vs wood)
colour     masked CIELAB histograms (L, and a*b* joint)                     0.25
=========  ===============================================================  ======

Each descriptor is L2-normalised; gradient descriptors (HOG, PHOG, GIST) are first
power-normalised (signed square root) and centred per vector, which removes the large common
component that non-negative histograms share and makes cosines discriminative. Scalars are
encoded with Gaussian RBF banks so that the dot product of two codes is a smooth similarity of
the scalars. Each group is scaled by the square root of its weight, so the cosine of two
embeddings is the weighted mean of the groups' cosines.

How the weights were chosen: on the development half of the IKEA product set (types with >= 10
images), block weights were searched on one half of it (split by a hash of the product id) and
checked on the other half, in both directions; the weights above are a rounded consensus of the
two. Nothing is fitted to data at run time (no codebook, no PCA): every embedding depends on its
own image only.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.feature import hog, local_binary_pattern

from staging.embed.base import Embedder, as_mask, l2_normalize, mask_box, product_crop

SIDE = 128  # working resolution of the square crop
FINE_SIDE = 256  # resolution of the fine-texture view (pile vs weave, fabric vs wood)
WEIGHTS = {
    "hog": 1.0,
    "phog": 1.0,
    "gist": 0.25,
    "shape": 2.0,
    "texture": 2.0,
    "fine": 0.5,
    "colour": 0.25,
}


# ----------------------------------------------------------------------------------- helpers


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).ravel()
    return l2_normalize(x)


def _power_centre(x: np.ndarray) -> np.ndarray:
    """Signed square root, minus the vector's own mean, L2-normalised."""
    x = np.asarray(x, dtype=np.float32).ravel()
    x = np.sign(x) * np.sqrt(np.abs(x))
    return l2_normalize(x - x.mean())


def _group(parts: list[np.ndarray]) -> np.ndarray:
    """Unit-norm blocks joined so the group's cosine is the mean of the blocks' cosines."""
    return np.concatenate(parts) / np.sqrt(len(parts))


def _rbf(value: float, lo: float, hi: float, n: int) -> np.ndarray:
    centres = np.linspace(lo, hi, n)
    width = (hi - lo) / (n - 1)
    return np.exp(-0.5 * ((value - centres) / width) ** 2)


def _gabor_bank(side: int, scales: int = 4, orientations: int = 8) -> np.ndarray:
    """Log-Gabor-like frequency-domain filters (scales x orientations, side x side)."""
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.fftfreq(side)[None, :]
    radius = np.hypot(fx, fy)
    theta = np.arctan2(fy, fx)
    bank = []
    for s in range(scales):
        f0 = 0.25 / 2**s
        for o in range(orientations):
            d = np.abs(np.angle(np.exp(1j * (theta - np.pi * o / orientations))))
            d = np.minimum(d, np.pi - d)  # even filters: theta and theta + pi alike
            radial = np.exp(-((radius - f0) ** 2) / (2 * (0.55 * f0) ** 2))
            angular = np.exp(-(d**2) / (2 * (np.pi / orientations / 1.2) ** 2))
            bank.append(radial * angular)
    return np.stack(bank).astype(np.float32)


_BANK = _gabor_bank(SIDE)


def gist(grey: np.ndarray, grid: int = 4) -> np.ndarray:
    """Gabor energy of a locally contrast-normalised square image, averaged on a grid."""
    x = np.log1p(grey.astype(np.float32))
    x = x - cv2.GaussianBlur(x, (0, 0), 4)
    x = x / (np.sqrt(cv2.GaussianBlur(x * x, (0, 0), 4)) + 0.2)
    spectrum = np.fft.fft2(x)
    response = np.abs(np.fft.ifft2(spectrum[None] * _BANK))
    cell = grey.shape[0] // grid
    return response.reshape(len(_BANK), grid, cell, grid, cell).mean(axis=(2, 4)).ravel()


def _gradients(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = grey.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    return np.hypot(gx, gy), np.arctan2(gy, gx) % np.pi


def phog(magnitude: np.ndarray, angle: np.ndarray, bins: int = 12, levels: int = 3) -> np.ndarray:
    """Pyramid of orientation histograms; each level normalised on its own."""
    side = magnitude.shape[0]
    orient = (angle / np.pi * bins).astype(np.int64) % bins
    parts = []
    for level in range(levels + 1):
        n = 2**level
        cell = np.arange(side) * n // side
        index = (cell[:, None] * n + cell[None, :]) * bins + orient
        hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * n * bins)
        parts.append(_unit(hist / (hist.sum() + 1e-6)))
    return np.concatenate(parts)


def _hog(grey: np.ndarray, side: int, cell: int) -> np.ndarray:
    small = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
    return hog(
        small,
        orientations=9,
        pixels_per_cell=(cell, cell),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        feature_vector=True,
    )


def shape_descriptors(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale-invariant scalars of a tight (cropped) bool mask as RBF codes: ``(scalars, hu)``.

    Scalars: log aspect ratio, fill (area / box), solidity (area / convex hull), compactness
    (log perimeter^2 / 4 pi area); ``hu``: the first four Hu moments (log scale).
    """
    h, w = mask.shape
    m8 = mask.astype(np.uint8)
    area = float(m8.sum())
    fill = area / (w * h)
    contours, _ = cv2.findContours(m8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.convexHull(np.concatenate(contours)) if contours else None
    solidity = area / max(cv2.contourArea(hull), 1.0) if hull is not None else 1.0
    contours, _ = cv2.findContours(m8, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours) or 4.0 * np.sqrt(area)
    compactness = np.log(perimeter**2 / (4 * np.pi * max(area, 1.0)))
    hu = cv2.HuMoments(cv2.moments(m8, True)).ravel()
    hu = -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)
    scalars = np.concatenate(
        [
            _rbf(np.log(w / h), -2.5, 2.5, 16),
            _rbf(fill, 0.0, 1.0, 10),
            _rbf(min(solidity, 1.0), 0.0, 1.0, 10),
            _rbf(compactness, 0.0, 4.0, 10),
        ]
    )
    ranges = [(0.0, 1.5), (0.0, 5.0), (0.0, 8.0), (0.0, 10.0)]
    codes = [_rbf(v, lo, hi, 8) for v, (lo, hi) in zip(hu[:4], ranges, strict=True)]
    hu_code = np.concatenate(codes)
    return scalars, hu_code


def radial_profile(mask: np.ndarray, bins: int = 36) -> np.ndarray:
    """Farthest mask pixel from the centroid per angle sector, relative to the farthest."""
    ys, xs = np.nonzero(mask)
    dy, dx = ys - ys.mean(), xs - xs.mean()
    sector = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * bins).astype(np.int64) % bins
    profile = np.zeros(bins)
    np.maximum.at(profile, sector, np.hypot(dy, dx))
    return profile / max(profile.max(), 1.0)


def fine_texture(image: np.ndarray, mask: np.ndarray | None, margin: float) -> np.ndarray:
    """Uniform LBP (8, 2) histogram of the product interior at :data:`FINE_SIDE` px."""
    crop = product_crop(image, mask, size=FINE_SIDE, margin=0.0)
    grey = cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY)
    inner = cv2.erode(crop.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    if inner.sum() < 50:  # thin products: use the whole mask
        inner = crop.mask
    codes = local_binary_pattern(grey, 8, 2, "uniform")[inner].astype(np.int64)
    return _unit(np.sqrt(np.bincount(codes, minlength=10)[:10] / max(int(inner.sum()), 1)))


# ----------------------------------------------------------------------------------- embedder


class HandcraftedEmbedder(Embedder):
    """Weights-free product embedder (see the module docstring). ``dim`` is fixed."""

    name = "handcrafted"

    def __init__(self, weights: dict[str, float] | None = None, margin: float = 0.05):
        self.weights = dict(WEIGHTS if weights is None else weights)
        unknown = set(self.weights) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"unknown descriptor groups {sorted(unknown)}; use {list(WEIGHTS)}")
        self.margin = margin
        probe = np.full((32, 32, 3), 255, np.uint8)
        probe[8:24, 10:22] = 90
        self.dim = int(self._embed_one(probe, probe[..., 0] < 128).size)

    def groups(self, image: np.ndarray, mask: np.ndarray | None) -> dict[str, np.ndarray]:
        """The descriptor groups of :data:`WEIGHTS`, each of unit norm (before weighting)."""
        crop = product_crop(image, mask, size=SIDE, margin=self.margin)
        grey = cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY)
        inside = crop.mask
        full = as_mask(mask, image.shape[:2])
        if full is None:
            full = np.ones(image.shape[:2], dtype=bool)
        x0, y0, x1, y1 = mask_box(full)
        tight = full[y0:y1, x0:x1]

        magnitude, angle = _gradients(grey)
        out: dict[str, np.ndarray] = {}
        out["hog"] = _group(
            [
                _power_centre(_hog(grey, 96, 12)),
                _power_centre(_hog(grey, 64, 8)),
                _power_centre(_hog(grey, 32, 8)),
            ]
        )
        out["phog"] = _power_centre(phog(magnitude, angle))
        out["gist"] = _power_centre(gist(grey))

        scalars, hu_code = shape_descriptors(tight)
        silhouette = cv2.resize(inside.astype(np.float32), (8, 8), interpolation=cv2.INTER_AREA)
        out["shape"] = _group(
            [
                _unit(silhouette),
                _unit(radial_profile(inside)),
                _unit(scalars),
                _unit(hu_code),
                _unit(gist((inside * 255).astype(np.uint8))),
            ]
        )

        n_inside = max(int(inside.sum()), 1)
        lbps = []
        for points, radius in ((16, 2), (24, 3)):
            codes = local_binary_pattern(grey, points, radius, "uniform")[inside]
            hist = np.bincount(codes.astype(np.int64), minlength=points + 2)[: points + 2]
            lbps.append(_unit(np.sqrt(hist / n_inside)))
        goh = np.histogram(angle, 18, (0.0, np.pi), weights=magnitude)[0]
        goh = np.sqrt(goh / (magnitude.sum() + 1e-6))
        out["texture"] = _group([*lbps, _unit(goh)])

        lab = cv2.cvtColor(crop.image, cv2.COLOR_RGB2LAB)[inside]
        hist_l = np.bincount(lab[:, 0] // 32, minlength=8)
        hist_ab = np.bincount((lab[:, 1] // 32) * 8 + lab[:, 2] // 32, minlength=64)
        out["colour"] = _unit(np.sqrt(np.concatenate([hist_l, hist_ab]) / n_inside))
        out["fine"] = fine_texture(image, mask, self.margin)
        return out

    def _embed_one(self, image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        groups = self.groups(image, mask)
        total = sum(self.weights.values()) or 1.0
        parts = [np.sqrt(self.weights.get(k, 0.0) / total) * v for k, v in groups.items()]
        return l2_normalize(np.concatenate(parts).astype(np.float32))
