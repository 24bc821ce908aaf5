"""Does IS-Net's edge refinement pay? Boundary F of the upsampled map vs the refined one.

IS-Net sees every photo at 1024x1024, so only photos larger than that get an upsampled map and
a refinement. Our real photos with accurate edges (``dev-data/catalog-shots-raw``: IKEA product
shots with alpha extracted from clipped white, built by ``make_dev_segmentation_set.py --raw``)
are 500 px, so each is enlarged ``--scale`` times (bicubic photo, bilinear alpha: the same
geometry) before segmenting; the net then sees a downsampled copy and its map is upsampled, as
for a large real photo. Objects are split into two halves by a hash of the file name: decide on
half A, report half B (the decision is one of two options, with no constant fitted).

Usage: STAGING_MODELS_DIR=../shared/models python scripts/eval_isnet_refinement.py [--limit 80]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staging import StagingEngine  # noqa: E402
from staging.evaluate.metrics import segmentation_metrics  # noqa: E402
from staging.io import load_image, load_mask  # noqa: E402
from staging.segment.isnet import band_for, refine_edges  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "dev-data" / "catalog-shots-raw")
    parser.add_argument("--scale", type=float, default=3.0)
    parser.add_argument("--limit", type=int, default=80, help="images per half")
    parser.add_argument("--backend", default="isnet-general-fp16")
    args = parser.parse_args()

    engine = StagingEngine(device="cpu", auto_pull=False)
    net = engine.segmenter(args.backend)
    halves: dict[str, list[dict]] = {"A": [], "B": []}
    images = sorted((args.set / "images").iterdir())
    for path in images:
        half = "A" if int(hashlib.sha1(path.stem.encode()).hexdigest(), 16) % 2 == 0 else "B"
        if len(halves[half]) >= args.limit:
            continue
        rgb = load_image(path)
        gt = load_mask(args.set / "masks" / f"{path.stem}.png", size=(rgb.shape[1], rgb.shape[0]))
        size = (round(rgb.shape[1] * args.scale), round(rgb.shape[0] * args.scale))
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        big_gt = np.clip(cv2.resize(gt, size, interpolation=cv2.INTER_LINEAR), 0, 1)
        upsampled = cv2.resize(net.net_map(big), size, interpolation=cv2.INTER_LINEAR)
        start = time.perf_counter()
        refined = refine_edges(big, np.clip(upsampled, 0, 1), band_for(big.shape))
        seconds = time.perf_counter() - start
        row = {"image": path.name, "refine_seconds": seconds}
        for name, prob in (("none", upsampled), ("cf", refined)):
            for key, value in segmentation_metrics(prob, big_gt).items():
                row[f"{name}_{key}"] = value
        halves[half].append(row)
        if all(len(h) >= args.limit for h in halves.values()):
            break
    report = {}
    for half, rows in halves.items():
        report[half] = {"images": len(rows)}
        for key in rows[0]:
            if key != "image":
                report[half][key] = round(float(np.mean([r[key] for r in rows])), 4)
        report[half]["cf_better_boundary_f"] = sum(
            r["cf_boundary_f"] > r["none_boundary_f"] for r in rows
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
