"""Build the dev set of ``staging eval copy-paste`` (not part of the package).

From the IKEA development half in ../shared/data/ikea (read in place, linked, never copied into
the repository), split by a hash of the room's file name:

* ``dev-data/copy-paste/scenes/``: half of the rooms, the staged catalog copy-paste draws from;
* ``dev-data/copy-paste/reference/``: the other half, the real rooms realism is measured against;
* ``dev-data/copy-paste/products.csv``: floor-standing products (chairs, tables, couches, beds,
  plant pots, cabinets, ...) on white, with ``id,image,type,size`` (image paths absolute),
  chosen by a hash of their id (``--products`` of them);
* ``dev-data/copy-paste/scenes/shot-<id>.jpg`` and ``catalog.csv``: the other floor-standing
  products' shots, with their ``type`` and ``size``, so the catalog holds what a bare photo's
  kind and size are read from (``staging eval copy-paste --csv``), with the rooms they appear
  in; the rooms' rows give their ``room_category`` and ``items``. The staged products' own
  shots are never in it.

Usage: python scripts/make_dev_copy_paste_set.py [--products 18]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IKEA = ROOT.parent / "shared" / "data" / "ikea"
OUT = ROOT / "dev-data" / "copy-paste"
# Products that stand on the floor: the ones copy-paste replaces a scene's main object with.
FLOOR_TYPES = (
    "chair", "armchair", "stool", "sofa", "table", "bed", "plant pot", "chest of",
    "cabinet", "bookcase", "shelving", "wardrobe", "sideboard", "bench", "desk", "nightstand",
    "floor lamp", "trolley", "footstool", "pouffe",
)  # fmt: skip
# ... and what matches those words but hangs on a wall or lies on a bed.
NOT_FLOOR = ("table lamp", "lamp shade", "linen", "mirror", "wall", "cot", "cover")


def digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=18)
    args = parser.parse_args()
    if not IKEA.is_dir():
        raise SystemExit(f"{IKEA} is missing: the dev set is built from the shared IKEA data.")
    for name in ("scenes", "reference"):
        (OUT / name).mkdir(parents=True, exist_ok=True)
    rooms = list(csv.DictReader((IKEA / "rooms.csv").read_text(encoding="utf-8").splitlines()))
    for row in rooms:
        source = IKEA / row["image"]
        half = "scenes" if digest(source.name) % 2 == 0 else "reference"
        link = OUT / half / source.name
        if not link.exists():
            link.symlink_to(source)
    products = [
        row
        for row in csv.DictReader((IKEA / "products.csv").read_text(encoding="utf-8").splitlines())
        if any(t in row["type"].lower() for t in FLOOR_TYPES)
        and not any(t in row["type"].lower() for t in NOT_FLOOR)
    ]
    products.sort(key=lambda row: digest(row["id"]))
    with open(OUT / "products.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "image", "type", "size"])
        for row in products[: args.products]:
            writer.writerow([row["id"], str(IKEA / row["image"]), row["type"], row["size"]])
    scenes = {Path(row["image"]).name for row in rooms} & {
        p.name for p in (OUT / "scenes").iterdir()
    }
    with open(OUT / "catalog.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "image", "type", "size", "rooms", "room_category", "items"])
        for row in products[args.products :]:
            link = OUT / "scenes" / f"shot-{row['id']}.jpg"
            if not link.exists():
                link.symlink_to(IKEA / row["image"])
            shown = [Path(r).name for r in row["rooms"].split(";") if Path(r).name in scenes]
            writer.writerow(
                [row["id"], link.name, row["type"], row["size"], ";".join(shown), "", ""]
            )
        for row in rooms:  # the rooms' type and the products they show (IKEA rooms.csv)
            name = Path(row["image"]).name
            if name in scenes:
                writer.writerow(["", name, "", "", "", row["room_category"], row["items"]])
    counts = {name: len(list((OUT / name).iterdir())) for name in ("scenes", "reference")}
    shots = max(0, len(products) - args.products)
    print(f"{OUT}: {counts} images ({shots} shots), {min(args.products, len(products))} products")


if __name__ == "__main__":
    main()
