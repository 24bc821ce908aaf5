"""``staging bench buckets``: how many background generations buckets save (seed 001).

Counts, no pixels: for ``N`` products x the given ad sizes, the generations needed with one
generation per ``(product, size)`` versus one per distinct bucket of each product
(:func:`staging.compose.buckets.plan_generations`). Products are **synthetic bounding boxes**:
only a product's aspect ratio changes its buckets, so the boxes are 1000 px on the long side
with aspect ratios log-uniform between 1:4 (a bottle) and 4:1 (a bench), seeded.

Besides the headline numbers the report gives:

* ``crop_share_*`` — the share of a generation's pixels a target's crop uses, the resolution
  price of bucketing (coarser ``r``: fewer buckets, smaller share);
* ``merged`` — the counts when a bucket may be served by a covering bucket of the same
  product whose canvas is at most ``merge`` times larger (our extension of the seed);
* ``near_duplicates`` — the seed's setting: its service sees *a few thousand* resolutions,
  many of them near-identical publisher slots. Every size gets ``variants`` siblings with each
  side jittered by up to ±5%; this is where buckets pay off by orders of magnitude. It runs on
  at most ``duplicate_products`` products to keep the command quick (the per-product counts
  do not depend on N).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from staging.compose.buckets import DEFAULT_R, GenerationPlan, crop_share, plan_generations
from staging.compose.placement import (
    DEFAULT_ALIGN,
    DEFAULT_FILL,
    DEFAULT_MARGIN,
    STANDARD_SIZES,
    Placement,
    get_placement,
    layout,
)
from staging.errors import StagingError

MAX_ASPECT = 4.0
LONG_SIDE = 1000
JITTER = 0.05


def synthetic_products(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` product bounding boxes ``(w, h)``: long side 1000 px, aspect log-uniform in
    ``[1/4, 4]``."""
    rng = np.random.default_rng(seed)
    aspects = np.exp(rng.uniform(-np.log(MAX_ASPECT), np.log(MAX_ASPECT), n))
    return [
        (LONG_SIDE, max(1, round(LONG_SIDE / a)))
        if a >= 1
        else (max(1, round(LONG_SIDE * a)), LONG_SIDE)
        for a in aspects
    ]


def near_duplicate_sizes(
    placements: Sequence[Placement], variants: int, seed: int = 0
) -> list[Placement]:
    """``placements`` plus ``variants`` distinct siblings each, every side scaled by a factor
    in ``[1 - 5%, 1 + 5%]`` (publishers' slightly different slots)."""
    rng = np.random.default_rng(seed + 1)
    seen = {p.size for p in placements}
    out = list(placements)
    for p in placements:
        made = tries = 0
        while made < variants and tries < 100 * variants:
            tries += 1
            w = round(p.width * rng.uniform(1 - JITTER, 1 + JITTER))
            h = round(p.height * rng.uniform(1 - JITTER, 1 + JITTER))
            if (w, h) in seen:
                continue
            seen.add((w, h))
            out.append(get_placement((w, h)))
            made += 1
    return out


def _counts(plan: GenerationPlan) -> dict:
    return {
        "sizes": len(plan.placements),
        "without_buckets": plan.without_buckets,
        "with_buckets": plan.with_buckets,
        "saving": plan.saving,
        "targets_per_generation": plan.reduction,
    }


def _crop_shares(plan: GenerationPlan, products: dict[int, tuple[int, int]], **lay) -> np.ndarray:
    by_name = {p.name: p for p in plan.placements}
    return np.array(
        [
            crop_share(bucket, layout(products[pid], by_name[name], **lay).box, by_name[name])
            for (pid, name), bucket in plan.assignments.items()
        ]
    )


def bench_buckets(
    products: int = 1000,
    sizes: Sequence[str | tuple[int, int] | Placement] = STANDARD_SIZES,
    r: float = DEFAULT_R,
    fill: float = DEFAULT_FILL,
    align: str = DEFAULT_ALIGN,
    margin: float = DEFAULT_MARGIN,
    merge: float = 1.5,
    variants: int = 100,
    duplicate_products: int = 100,
    seed: int = 0,
) -> dict:
    """Generation counts with and without buckets; see the module docstring."""
    if products < 1:
        raise StagingError(f"--products must be at least 1, not {products}.")
    if variants < 0:
        raise StagingError(f"--variants cannot be negative ({variants}).")
    placements = list(dict.fromkeys(get_placement(s) for s in sizes))
    boxes = dict(enumerate(synthetic_products(products, seed)))
    lay = {"fill": fill, "align": align, "margin": margin}
    t0 = time.perf_counter()
    plan = plan_generations(boxes, placements, r=r, **lay)
    seconds = time.perf_counter() - t0
    shares = _crop_shares(plan, boxes, **lay)
    merged = plan_generations(boxes, placements, r=r, merge=merge, **lay)
    merged_shares = _crop_shares(merged, boxes, **lay)
    distinct = {b.bins for gens in plan.generations.values() for b in gens}
    report: dict = {
        "products": products,
        "product_boxes": "synthetic, aspect log-uniform 1:4 to 4:1",
        "sizes": len(placements),
        "size_list": ",".join(f"{p.width}x{p.height}" for p in placements),
        "r": float(r),
        "fill": float(fill),
        "align": align,
        "margin": float(margin),
        "generations_without_buckets": plan.without_buckets,
        "generations_with_buckets": plan.with_buckets,
        "saving": plan.saving,
        "targets_per_generation": plan.reduction,
        "buckets_per_product": plan.with_buckets / products,
        "distinct_bucket_shapes": len(distinct),
        "crop_share_mean": float(shares.mean()),
        "crop_share_min": float(shares.min()),
        "plan_seconds": seconds,
        "merged": {
            "merge": float(merge),
            **_counts(merged),
            "crop_share_mean": float(merged_shares.mean()),
            "crop_share_min": float(merged_shares.min()),
        },
    }
    if variants:
        many = near_duplicate_sizes(placements, variants, seed)
        subset = dict(list(boxes.items())[: max(1, min(products, duplicate_products))])
        dup = plan_generations(subset, many, r=r, **lay)
        report["near_duplicates"] = {
            "products": len(subset),
            "variants_per_size": variants,
            **_counts(dup),
        }
    return report
