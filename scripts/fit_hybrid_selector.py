"""Fit the per-image selector of the ``hybrid`` segmentation backend (not part of the package).

Runs ``catalog`` and ``u2netp`` on the tuning studio shots (``dev-data/catalog-shots``, built by
``scripts/make_dev_segmentation_set.py``), computes :func:`staging.segment.hybrid.
selector_features`, and fits a 3-way linear softmax over (catalog, net, average) by gradient
ascent on the expected IoU, with a small L2 penalty. The held-out sets are only reported.
The constants are written into ``staging/segment/hybrid.py`` between its FITTED markers.

    STAGING_MODELS_DIR=../shared/models python scripts/fit_hybrid_selector.py [--l2 0.01]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staging import StagingEngine  # noqa: E402
from staging.io import list_images, load_mask  # noqa: E402
from staging.segment.hybrid import selector_features  # noqa: E402

SETS = ("catalog-shots", "catalog-shots-val", "catalog-shots-procedural")


def collect(engine: StagingEngine, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and the IoU of each choice (catalog, net, average) per image."""
    features, ious = [], []
    for path in list_images(folder / "images"):
        truth = load_mask(folder / "masks" / f"{path.stem}.png") >= 0.5
        image = engine.load_image(path)
        a = engine.segmenter("catalog").predict(image)
        b = engine.segmenter("u2netp").predict(image)
        maps = (a, b, 0.5 * (a + b))
        ious.append([((m >= 0.5) & truth).sum() / max(1, ((m >= 0.5) | truth).sum()) for m in maps])
        features.append(selector_features(image, a, b))
    return np.array(features), np.array(ious)


def fit(x: np.ndarray, ious: np.ndarray, l2: float, iters: int = 3000, lr: float = 0.5):
    xb = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros((xb.shape[1], ious.shape[1]))
    for _ in range(iters):
        s = xb @ weights
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        expected = (p * ious).sum(axis=1, keepdims=True)
        weights += lr * (xb.T @ (p * (ious - expected)) / len(x) - l2 * weights)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2", type=float, default=0.01)
    args = parser.parse_args()
    engine = StagingEngine()
    data = {name: collect(engine, ROOT / "dev-data" / name) for name in SETS}
    x, ious = data[SETS[0]]
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    weights = fit((x - mean) / scale, ious, args.l2)
    for name, (xs, iu) in data.items():
        z = np.hstack([(xs - mean) / scale, np.ones((len(xs), 1))])
        picked = iu[np.arange(len(iu)), (z @ weights).argmax(axis=1)].mean()
        print(
            f"{name:26} catalog {iu[:, 0].mean():.4f}  net {iu[:, 1].mean():.4f}  "
            f"average {iu[:, 2].mean():.4f}  hybrid {picked:.4f}  "
            f"oracle {iu.max(axis=1).mean():.4f}"
        )

    def fmt(a: np.ndarray) -> str:  # fixed-point: no 1e-04 noise in the source
        opts = {"floatmode": "fixed", "suppress_small": True}
        return np.array2string(a, precision=5, separator=", ", max_line_width=80, **opts)

    block = (
        "# BEGIN FITTED (scripts/fit_hybrid_selector.py)\n"
        f"_MEAN = np.array({fmt(mean)})\n"
        f"_SCALE = np.array({fmt(scale)})\n"
        f"_WEIGHTS = np.array({fmt(weights)})\n"
        "# END FITTED"
    )
    target = ROOT / "staging" / "segment" / "hybrid.py"
    text = re.sub(r"# BEGIN FITTED.*?# END FITTED", block, target.read_text(), flags=re.S)
    target.write_text(text)
    subprocess.run([sys.executable, "-m", "ruff", "format", str(target)], check=False)
    print(f"wrote the selector into {target}")


if __name__ == "__main__":
    main()
