"""Each step IS-Net's backend adds around the network, against the network alone.

A step stays only where it beats the plain session (the whole photo resized to 1024x1024,
bilinear, the map resized back, threshold 0.5) on photos it was not chosen on. For every
labelled photo this computes the net's map of the photo once (and of the photo with the backdrop
margin, of the photo at the working size, when a variant needs them) and scores:

==================  ==========================================================================
``plain``           the network alone
``margin_always``   the backdrop margin on every plain-backdrop photo (the rule before)
``margin_needed``   the margin only where :func:`~staging.segment.isnet.needs_margin` says so
``+refine``         ``margin_needed`` plus closed-form edge refinement where the map is upsampled,
                    solved at the photo's full size
``shrunk``          ``margin_needed`` on the photo shrunk to the working size (long side 2048),
                    the map enlarged back (the rule before: how a bounded size used to be had)
``auto``            what ``engine.segment`` returns: ``+refine`` with the refinement solved at
                    most at the working size and only the band's pixels taking it
                    (:func:`~staging.segment.isnet.refine_at_most`)
==================  ==========================================================================

Photos are split into halves by a hash of the file name (as the earlier scripts did): decide
on half A, report half B. ``--scale`` enlarges each photo (bicubic; the mask bilinear) so small
photos test the steps that act only on big ones (refinement, working size).

Usage: STAGING_MODELS_DIR=../shared/models python scripts/eval_segment_steps.py \\
           --images DIR --masks DIR [--scale 3] [--limit 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staging import StagingEngine  # noqa: E402
from staging.evaluate.metrics import segmentation_metrics  # noqa: E402
from staging.evaluate.segmentation import pair_images_and_masks  # noqa: E402
from staging.io import at_most, load_image, load_mask  # noqa: E402
from staging.segment.base import WORKING_SIDE  # noqa: E402
from staging.segment.isnet import (  # noqa: E402
    IsNetSegmenter,
    band_for,
    needs_margin,
    refine_edges,
    upsample_crop,
    with_margin,
)
from staging.segment.staged import classify_staged  # noqa: E402

VARIANTS = ("plain", "margin_always", "margin_needed", "+refine", "shrunk", "auto")


def half_of(name: str) -> str:
    return "A" if int(hashlib.sha1(Path(name).stem.encode()).hexdigest(), 16) % 2 == 0 else "B"


def scores(net, unrefined, engine, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The probability map of every variant for one photo."""
    h, w = rgb.shape[:2]
    pred = net.net_map(rgb)
    plain = np.clip(upsample_crop(pred, (h, w), 0, rgb.shape), 0, 1)
    staged = classify_staged(rgb).staged
    margin = int(round(net.pad * max(h, w)))
    framed_shape = (h + 2 * margin, w + 2 * margin)
    framed = plain
    if not staged:
        pred_framed = net.net_map(with_margin(rgb, margin))
        framed = np.clip(upsample_crop(pred_framed, framed_shape, margin, rgb.shape), 0, 1)
    doubt = not staged and needs_margin(pred, net.pad)
    maps = {
        "plain": plain,
        "margin_always": framed,
        "margin_needed": framed if doubt else plain,
    }
    seen = framed_shape if doubt else (h, w)
    if max(seen) > 1024:
        maps["+refine"] = refine_edges(rgb, maps["margin_needed"], band_for(seen))
    else:
        maps["+refine"] = maps["margin_needed"]
    if max(h, w) > WORKING_SIDE:
        small = at_most(rgb, WORKING_SIDE)
        maps["shrunk"] = cv2.resize(unrefined.predict(small), (w, h))
    else:
        maps["shrunk"] = maps["margin_needed"]
    maps["auto"] = engine.segment(rgb).prob
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--masks", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--limit", type=int, default=0, help="photos per half (0: all)")
    parser.add_argument("--json", type=Path, help="write the per-photo rows here")
    parser.add_argument("--backend", default="isnet-general-fp16")
    args = parser.parse_args()

    engine = StagingEngine(device="cpu", auto_pull=False)
    net = engine.segmenter(args.backend)
    unrefined = IsNetSegmenter(net.session, net.name, net.normalization, "none", net.pad)
    pairs = pair_images_and_masks(args.images, args.masks)
    if args.limit:
        taken = {"A": 0, "B": 0}
        chosen = []
        for pair in pairs:
            half = half_of(pair[0].name)
            if taken[half] < args.limit:
                taken[half] += 1
                chosen.append(pair)
        pairs = chosen
    rows = []
    for image_path, mask_path in tqdm(pairs, desc="photos", unit="photo"):
        rgb = load_image(image_path)
        gt = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0]))
        if args.scale != 1.0:
            size = (round(rgb.shape[1] * args.scale), round(rgb.shape[0] * args.scale))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
            gt = np.clip(cv2.resize(gt, size, interpolation=cv2.INTER_LINEAR), 0, 1)
        row: dict = {"image": image_path.name, "half": half_of(image_path.name)}
        for variant, prob in scores(net, unrefined, engine, rgb).items():
            metrics = segmentation_metrics(prob, gt)
            row[variant] = round(metrics["iou"], 5)
            row[f"{variant}_boundary_f"] = round(metrics["boundary_f"], 5)
        rows.append(row)
    report: dict = {}
    for half in ("A", "B"):
        part = [r for r in rows if r["half"] == half]
        if not part:
            continue
        summary: dict = {"photos": len(part)}
        for variant in VARIANTS:
            values = np.array([r[variant] for r in part])
            plain = np.array([r["plain"] for r in part])
            summary[variant] = {
                "iou": round(float(values.mean()), 4),
                "boundary_f": round(float(np.mean([r[f"{variant}_boundary_f"] for r in part])), 4),
                "under_0.5": int((values < 0.5).sum()),
                "worse_than_plain_by_0.01": int((values < plain - 0.01).sum()),
                "better_than_plain_by_0.01": int((values > plain + 0.01).sum()),
            }
        report[half] = summary
    for half, summary in report.items():
        print(f"half {half}: {summary['photos']} photos")
        for variant in VARIANTS:
            v = summary[variant]
            print(
                f"  {variant:14} IoU {v['iou']:.4f}  boundary F {v['boundary_f']:.4f}  "
                f"under 0.5: {v['under_0.5']:3d}  vs plain (0.01): "
                f"+{v['better_than_plain_by_0.01']} -{v['worse_than_plain_by_0.01']}"
            )
    if args.json:
        args.json.write_text(json.dumps({"report": report, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
