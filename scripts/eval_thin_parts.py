"""Thin parts on big photos: a synthetic tripod (a solid top on legs 3 or 6 px wide) at 3000 and
4000 px, through the plain session, our backend on the photo shrunk to the working size (the
rule before) and our backend as it ships. IoU against the drawn truth.

Usage: STAGING_MODELS_DIR=../shared/models python scripts/eval_thin_parts.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staging import StagingEngine  # noqa: E402
from staging.evaluate.metrics import segmentation_metrics  # noqa: E402
from staging.evaluate.segmentation import plain_segmenter  # noqa: E402
from staging.io import at_most  # noqa: E402
from staging.segment.base import WORKING_SIDE  # noqa: E402


def tripod(size: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A dark tripod on a light page and its truth, drawn at ``size`` px."""
    image = np.full((size, size, 3), 235, np.uint8)
    truth = np.zeros((size, size), np.uint8)
    s = size / 2000
    top = (int(1000 * s), int(400 * s))
    for x1 in (300, 700, 1300, 1700):
        cv2.line(image, top, (int(x1 * s), int(1800 * s)), (50, 45, 40), width)
        cv2.line(truth, top, (int(x1 * s), int(1800 * s)), 1, width)
    cv2.circle(image, top, int(120 * s), (60, 40, 30), -1)
    cv2.circle(truth, top, int(120 * s), 1, -1)
    return image, truth > 0


def main() -> None:
    engine = StagingEngine(device="cpu", auto_pull=False)
    ours = engine.segmenter("isnet-general-fp16")
    plain = plain_segmenter(engine, "isnet-general-fp16")
    for size in (3000, 4000):
        for width in (3, 6):
            image, truth = tripod(size, width)
            shrunk = cv2.resize(ours.predict(at_most(image, WORKING_SIDE)), (size, size))
            maps = {"plain": plain.predict(image), "shrunk": shrunk, "now": ours.predict(image)}
            ious = {k: round(segmentation_metrics(v, truth)["iou"], 4) for k, v in maps.items()}
            print(f"{size} px, {width} px legs: {ious}", flush=True)


if __name__ == "__main__":
    main()
