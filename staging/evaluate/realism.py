"""``staging eval realism``: how real a folder of generated images looks next to real ones.

Pixel metrics (PSNR, L1) reward blur: a smeared fill scores well and looks fake. Realism is
measured the way generative models are, by comparing the *distribution* of deep features of
the generated images with that of real photos:

* **KID** (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel
  ``k(x, y) = (x·y / d + 1)³``, averaged over random subsets (mean ± std). Unbiased, so it
  can be compared across set sizes and works with the few dozen images of a catalog;
  reported ×1000 as is customary.
* **FD** (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the two
  feature sets. Biased for small sets (it shrinks as sets grow), so compare it only at equal
  sizes; with Inception-V3 pool3 features it *is* the FID the seed paper reports.

Features: the whole image resized to the network's input (no crop, as FID does), average-
pooled before the classifier. ``mobilenet_v2`` (1280-d, the int8 model in the models dir)
works everywhere; ``inception`` (2048-d) uses pytorch-fid's port of the TF FID network
when ``pytorch-fid`` is installed and its weights are in the models dir.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy import linalg

from staging.errors import StagingError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
FEATURES = ("mobilenet_v2", "inception")

FeatureFn = Callable[[Sequence[np.ndarray]], np.ndarray]


def mobilenet_features(embedder) -> FeatureFn:
    """Average-pooled pre-classifier features of ``embedder``'s MobileNetV2 (whole image)."""
    size = embedder.input_size

    def features(images: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(images), 16):
            batch = np.stack(
                [
                    (
                        (cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA) / 255.0)
                        - IMAGENET_MEAN
                    )
                    / IMAGENET_STD
                    for rgb in images[start : start + 16]
                ]
            ).astype(np.float32)
            fmap = embedder.feature_maps(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
            out.append(fmap.astype(np.float64).mean(axis=(2, 3)))
        return np.concatenate(out)

    return features


def inception_features(weights: Path) -> FeatureFn:
    """pool3 features of the FID Inception-V3 (pytorch-fid's port of the TF graph)."""
    try:
        import torch
        from pytorch_fid.inception import FIDInceptionA, InceptionV3  # noqa: F401
    except ImportError as exc:
        raise StagingError(
            "Inception features need PyTorch and pytorch-fid: pip install pytorch-fid"
        ) from exc
    import pytorch_fid.inception as fid_inception

    # pytorch-fid downloads its weights through torch.hub; point it at the file on disk.
    fid_inception.load_state_dict_from_url = lambda *a, **k: torch.load(weights)
    model = fid_inception.InceptionV3([3], normalize_input=True).eval()

    def features(images: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(images), 16):
                chunk = images[start : start + 16]
                batch = np.stack(
                    [cv2.resize(rgb, (299, 299), interpolation=cv2.INTER_AREA) for rgb in chunk]
                )
                x = torch.from_numpy(batch).permute(0, 3, 1, 2) / 255.0
                out.append(model(x)[0].squeeze(-1).squeeze(-1).double().numpy())
        return np.concatenate(out)

    return features


def kid(
    real: np.ndarray, generated: np.ndarray, subsets: int = 100, subset_size: int = 1000
) -> tuple[float, float]:
    """Kernel Inception Distance ``(mean, std)`` over random subsets (unbiased MMD²)."""
    m = min(len(real), len(generated), subset_size)
    if m < 2:
        raise StagingError("KID needs at least 2 images on each side.")
    d = real.shape[1]
    rng = np.random.default_rng(0)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = generated[rng.choice(len(generated), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        off = m * (m - 1)
        values.append(
            (kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean()
        )
    return float(np.mean(values)), float(np.std(values))


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets."""
    mu1, mu2 = real.mean(axis=0), generated.mean(axis=0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    eps = np.eye(len(s1)) * 1e-6  # few images: singular covariances, regularised as pytorch-fid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def realism(
    real: Sequence[np.ndarray],
    generated: Sequence[np.ndarray],
    features: FeatureFn,
    subsets: int = 100,
    subset_size: int = 1000,
) -> dict:
    """KID×1000 (mean, std) and FD of ``generated`` against ``real`` (RGB uint8 lists)."""
    fr, fg = features(list(real)), features(list(generated))
    kid_mean, kid_std = kid(fr, fg, subsets, subset_size)
    return {
        "real": len(real),
        "generated": len(generated),
        "kid_x1000": round(1000 * kid_mean, 2),
        "kid_x1000_std": round(1000 * kid_std, 2),
        "fd": round(frechet_distance(fr, fg), 2),
    }


def feature_fn(name: str, store) -> FeatureFn:
    """The feature extractor ``name`` (see :data:`FEATURES`), its weights from ``store``."""
    if name == "mobilenet_v2":
        from staging.embed.mobilenet_v2 import MobileNetV2Embedder

        return mobilenet_features(MobileNetV2Embedder(store.path("mobilenet_v2")))
    if name == "inception":
        return inception_features(store.path("inception-v3-fid"))
    raise StagingError(f"Unknown features {name!r}: choose one of {', '.join(FEATURES)}.")


def load_folder(folder: str | os.PathLike, limit: int | None = None) -> list[np.ndarray]:
    """Every image in ``folder`` (sorted), as RGB uint8."""
    from staging.io import list_images, load_image

    paths = list_images(Path(folder))[:limit]
    if not paths:
        raise StagingError(f"No images in {folder}.")
    return [load_image(p) for p in paths]
