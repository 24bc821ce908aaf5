"""Catalog rows for the dev scenes of ``staging eval copy-paste`` (not part of the package).

An IKEA room photo shows several catalog products (``products.csv``'s ``rooms`` column lists
them, with their ``type`` and ``size``), but not which one the segmenter's main object is. This
script names it: the main object of each indexed scene (its largest mask part, as copy-paste
replaces it) is embedded and compared with the listed products that stand on the floor and
have a size; the most similar one gives the scene's ``type`` and ``size`` columns. It also
writes a contact sheet (the object beside its match and the cosine) to check by eye.

Usage: python scripts/ikea_scene_rows.py INDEX_DIR OUT.csv SHEET.png
(INDEX_DIR: an index of dev-data/copy-paste/scenes, e.g. the one ``staging eval copy-paste``
writes; re-index it with ``--csv OUT.csv`` to use the rows.)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from staging import StagingEngine
from staging.compose.scale import width_from_size
from staging.compose.scene import main_object
from staging.io import load_image, load_mask, save_image

sys.path.insert(0, str(Path(__file__).parent))
from make_dev_copy_paste_set import FLOOR_TYPES, IKEA, NOT_FLOOR  # noqa: E402


def floor_standing(kind: str) -> bool:
    kind = kind.lower()
    return any(t in kind for t in FLOOR_TYPES) and not any(t in kind for t in NOT_FLOOR)


def tile(rgb: np.ndarray, caption: str, side: int = 200) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))
    out = np.full((side + 16, side, 3), 255, np.uint8)
    out[: small.shape[0], : small.shape[1]] = small
    cv2.putText(out, caption[:34], (2, side + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    return out


def main() -> None:
    index_dir, out_csv, sheet = (Path(a) for a in sys.argv[1:4])
    engine = StagingEngine()
    index = engine.index(index_dir)
    products = list(csv.DictReader((IKEA / "products.csv").open(encoding="utf-8")))
    listed: dict[str, list[dict]] = {}
    for row in products:
        if floor_standing(row["type"]) and width_from_size(row["size"]):
            for room in filter(None, (row["rooms"] or "").split(";")):
                listed.setdefault(Path(room).name, []).append(row)
    vectors: dict[str, np.ndarray] = {}
    rows, tiles = [], []
    for hit in index.staged_items():
        name = Path(hit.path).name
        candidates = listed.get(name, [])
        if not candidates or hit.mask is None:
            rows.append({"image": str(hit.path), "type": "", "size": ""})
            continue
        rgb = load_image(hit.path)
        mask = main_object(load_mask(hit.mask, size=(rgb.shape[1], rgb.shape[0])) >= 0.5)
        if not mask.any():
            rows.append({"image": str(hit.path), "type": "", "size": ""})
            continue
        query = engine.embed(rgb, embedder=index.embedder_name, mask=mask)
        for row in candidates:
            if row["id"] not in vectors:
                vectors[row["id"]] = engine.embed(IKEA / row["image"], index.embedder_name)
        scores = [float(query @ vectors[row["id"]]) for row in candidates]
        best = candidates[int(np.argmax(scores))]
        rows.append({"image": str(hit.path), "type": best["type"], "size": best["size"]})
        ys, xs = np.nonzero(mask)
        crop = rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        tiles.append(
            np.hstack(
                [
                    tile(rgb, name[5:40]),
                    tile(crop, "main object"),
                    tile(
                        load_image(IKEA / best["image"]),
                        f"{best['type']} {best['size']} cos {max(scores):.2f} of {len(scores)}",
                    ),
                ]
            )  # fmt: skip
        )
    with open(out_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["image", "type", "size"])
        writer.writeheader()
        writer.writerows(rows)
    if tiles:
        save_image(sheet, np.vstack(tiles))
    named = sum(bool(r["type"]) for r in rows)
    print(f"{out_csv}: {len(rows)} scenes, {named} named; sheet {sheet}")


if __name__ == "__main__":
    main()
