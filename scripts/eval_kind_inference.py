"""How often the kind a bare photo is taken for (:mod:`staging.catalog.infer`) is its own.

Every IKEA product shot of the development half (``../shared/data/ikea/products.csv``) is
indexed with its CSV ``type`` and ``size``; each shot is then asked for as a bare photo, its
own row left out of the vote (leave-one-out: the catalog knows every other product). Shots are
split into halves by a hash of the id; nothing here is fitted (the vote's k is
:data:`~staging.catalog.infer.NEIGHBOURS`), so both halves are reported.

"right": the inferred type shares a word or synonym with the truth (``same_kind``, what the fit
uses); "exact": the same type text. Shots are segmented with the weights-free ``catalog``
backdrop model (plain-white shots; an IS-Net pass over 1,114 shots takes half an hour here).

Usage: STAGING_MODELS_DIR=../shared/models python scripts/eval_kind_inference.py \\
           [--embedder handcrafted|mobilenet_v2|fused] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staging import StagingEngine  # noqa: E402
from staging.catalog.infer import NEIGHBOURS, infer_product  # noqa: E402
from staging.compose.fit import same_kind  # noqa: E402

IKEA = ROOT.parent / "shared" / "data" / "ikea"


def half_of(product_id: str) -> str:
    """A or B by a salted hash: the shared data's own split is by a hash of the id, so an
    unsalted one puts every product of this half on one side."""
    digest = hashlib.sha1(f"kind-inference:{product_id}".encode()).hexdigest()
    return "A" if int(digest, 16) % 2 == 0 else "B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="handcrafted")
    parser.add_argument("--index", type=Path, default=None, help="default dev-data/kind-<emb>")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = list(csv.DictReader((IKEA / "products.csv").read_text(encoding="utf-8").splitlines()))
    index = args.index or ROOT / "dev-data" / f"kind-{args.embedder}"
    catalog_csv = index.with_suffix(".csv")
    index.parent.mkdir(parents=True, exist_ok=True)
    with open(catalog_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "image", "type", "size"])
        for row in rows:
            writer.writerow([row["id"], row["image"], row["type"], row["size"]])
    engine = StagingEngine(device="cpu", auto_pull=False, segment_backend="catalog")
    engine.update_index(index, IKEA, csv=catalog_csv, embedder=args.embedder, analyse_scenes=False)
    catalog = engine.index(index)
    per_half: dict[str, dict[str, int]] = {}
    misses = []
    for row in tqdm(rows, desc="asking", unit="shot"):
        if not row["type"]:
            continue
        vector = engine.embed(IKEA / row["image"], embedder=catalog.embedder_name)
        hits = catalog.search(vector, k=NEIGHBOURS + 1, staged_only=False, shots_only=True)
        inferred = infer_product([h for h in hits if h.id != row["id"]][:NEIGHBOURS])
        tally = per_half.setdefault(half_of(row["id"]), {"shots": 0, "right": 0, "exact": 0})
        tally["shots"] += 1
        if inferred is not None and same_kind(inferred.type, row["type"]) == 1.0:
            tally["right"] += 1
            tally["exact"] += inferred.type.lower() == row["type"].lower()
        else:
            misses.append((row["id"], row["type"], inferred.type if inferred else None))
    for half in sorted(per_half):
        t = per_half[half]
        print(
            f"half {half}: {t['shots']} shots, kind right {t['right'] / t['shots']:.3f}, "
            f"exact type {t['exact'] / t['shots']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"halves": per_half, "misses": misses}, indent=1))


if __name__ == "__main__":
    main()
