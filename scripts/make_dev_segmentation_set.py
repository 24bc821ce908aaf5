"""Build the dev ground truth for the ``catalog`` segmentation backend (not part of the package).

Real objects with (near-)human alpha are read in place from ../shared (never copied into the
repository) and composited onto generated studio backgrounds with soft shadows by
:func:`staging.evaluate.synth.compose_catalog_shot`:

(a) the official U^2-Net test photos with the authors' U^2-Net saliency maps as alpha
    (``alpha = clip((map - 0.1) / 0.8)``);
(b) IKEA product shots on clean white: alpha from the distance to white, as coverage
    (``clip((d - 6) / (d_F - 6))`` with ``d`` the max-channel distance from 255 and ``d_F``
    the product colour's just inside, at least 30; see :func:`coverage_ramp`), kept only when
    the border is clean white and the object is one main component; holes are kept
    (background between chair legs is background), tiny specks dropped, edge colours
    decontaminated from the white.

Objects are split by a hash of their id into ``dev-data/catalog-shots`` (tuning) and
``dev-data/catalog-shots-val`` (different objects, to check for overfitting). Each folder has
``images/NAME.png|jpg``, ``masks/NAME.png`` (8-bit alpha) and ``meta.csv``. A third folder,
``dev-data/catalog-shots-procedural``, holds shots of procedural objects (glass, white-on-white,
grey, ...) that the real sets under-represent.

A fourth folder, ``dev-data/catalog-shots-raw`` (``--raw`` builds only it), holds the IKEA
product photos themselves -- real objects on clipped white, with their real shadows -- and the
alpha extracted from them as in (b). That alpha counts a shadow darker than ~6 levels as
product and cannot be had for white products that merge into the white (those shots are
left out), so this set checks for gross failures on real photos rather than edge accuracy.

Usage: python scripts/make_dev_segmentation_set.py [--shots 300] [--val-shots 100] [--seed 0]
       python scripts/make_dev_segmentation_set.py --raw
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staging.evaluate.synth import KINDS, compose_catalog_shot, procedural_object  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "dev-data"

# IKEA types that make good studio objects, grouped into coarse object types. Flat textiles
# (rugs, quilts, towels, curtains), doors and wall-mounted parts are left out.
IKEA_GROUPS = {
    "chair": ("chair", "stool", "bench", "footstool", "step stool", "high chair"),
    "lamp": ("lamp", "lamp shade"),
    "plant": ("plant", "plant pot", "artificial"),
    "table": ("table", "desk", "trolley"),
    "sofa": ("sofa", "armchair", "chaise"),
    "clock": ("clock",),
    "storage": (
        "shelving",
        "bookcase",
        "cabinet",
        "chest",
        "drawers",
        "box",
        "basket",
        "wardrobe",
        "tv bench",
        "storage",
    ),
    "tableware": (
        "bowl",
        "vase",
        "glass",
        "plate",
        "mug",
        "cup",
        "jug",
        "carafe",
        "pot",
        "pan",
        "board",
        "tray",
        "bottle",
    ),
    "decor": ("soft toy", "cushion", "frame", "mirror", "candle"),
    "bed": ("bed", "cot"),
}
EXCLUDE = (
    "rug",
    "quilt",
    "cover",
    "towel",
    "curtain",
    "door",
    "fabric",
    "throw",
    "bedspread",
    "blanket",
    "mat",
    "pillowcase",
    "worktop",
    "handle",
    "knob",
    "hood",
    "sheet",
)


@dataclass
class SourceObject:
    name: str  # unique id used in file names
    source: str  # "u2net" | "ikea" | "procedural"
    kind: str  # coarse object type
    rgb: np.ndarray  # uint8 straight colours
    alpha: np.ndarray  # float32 [0, 1]


def is_val(name: str, fraction: float = 0.25) -> bool:
    digest = hashlib.sha1(name.encode()).digest()
    return digest[0] / 256.0 < fraction


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def keep_main_component(alpha: np.ndarray, min_fraction: float = 0.9) -> np.ndarray | None:
    """Drop specks; None unless one component holds >= min_fraction of the object area."""
    solid = (alpha >= 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    main = 1 + int(np.argmax(areas))
    if areas.max() < min_fraction * areas.sum():
        return None
    # Everything not attached to the main component (within a couple of pixels) is a speck.
    keep = cv2.dilate((labels == main).astype(np.uint8), np.ones((5, 5), np.uint8))
    # Soft pixels that touch no solid pixel at all (JPEG noise) also go.
    return alpha * keep.astype(np.float32)


def decontaminate_white(img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight foreground colours F from I = a*F + (1-a)*255."""
    f = img.astype(np.float32)
    a = alpha[..., None]
    solved = (f - (1.0 - a) * 255.0) / np.maximum(a, 1e-3)
    out = np.where(a > 0.05, np.clip(solved, 0, 255), f)
    return np.round(out).astype(np.uint8)


def ikea_group(ptype: str, category: str) -> str | None:
    t = ptype.lower()
    if any(x in t for x in EXCLUDE):
        return None
    cat = category.lower()
    if cat in ("chair",):
        return "chair"
    if cat in ("couch",):
        return "sofa"
    if cat == "plant_pot":
        return "plant"
    if cat == "dining table":
        return "table"
    if cat in ("clock", "bed"):
        return cat
    for group, words in IKEA_GROUPS.items():
        if any(w in t for w in words):
            return group
    return None


def _components(mask: np.ndarray) -> tuple[int, np.ndarray]:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)


def background_region(dist: np.ndarray, stats: Counter) -> np.ndarray | None:
    """Pixels that are real white background: border-connected, plus enclosed holes that are
    as clean a white as the studio backdrop (a white product surface is shaded/textured, a
    hole between chair legs shows the pure white sweep). None when white product surfaces
    leak into the border-connected backdrop."""
    low = dist < 6
    n, labels = _components(low)
    border_ids = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border_ids = border_ids[border_ids > 0]
    bg = np.isin(labels, border_ids)
    # The backdrop itself must be clean white away from the object's edge.
    inner = cv2.erode(bg.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    if np.count_nonzero(inner & (dist > 2)) > 800:
        stats["backdrop not clean (white product leaks into it)"] += 1
        return None
    pure = dist <= 1
    kernel = np.ones((5, 5), np.uint8)
    for k in range(1, n):
        if k in border_ids:
            continue
        hole = labels == k
        if np.count_nonzero(hole) < 64:  # pattern dots, pores: a human mask fills these
            continue
        interior = cv2.erode(hole.astype(np.uint8), kernel).astype(bool)
        if np.count_nonzero(interior) >= 15:
            real = pure[interior].mean() >= 0.88
        else:
            real = pure[hole].mean() >= 0.6
        if real:
            bg |= hole
        else:
            stats["white surfaces kept as product"] += 1
    return bg


def coverage_ramp(dist: np.ndarray, d_bg: np.ndarray) -> np.ndarray:
    """Edge alpha as the share of the pixel the product covers, as a human mask is drawn.

    An edge pixel of a product with colour F on white has ``dist = a * dist(F)``. A fixed ramp
    (``(dist - 6) / 24``) reaches 0.5 at 7 % coverage for a black product and puts the mask's
    edge a fraction of a pixel outside the visible one. Dividing by the distance of the
    product colour just inside -- ``dist`` at the nearest pixel 2+ px from the backdrop, so a
    light rim (a metal leg's highlight) is measured against itself, not against the dark core
    next to it; at least 30, so white products keep the fixed ramp -- puts 0.5 at half coverage.
    """
    inside = (d_bg >= 2.0).astype(np.uint8)
    if not inside.any():
        return np.clip((dist - 6.0) / 24.0, 0.0, 1.0)
    _, labels = cv2.distanceTransformWithLabels(
        1 - inside, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(inside)
    lookup = np.zeros(labels.max() + 1, np.float32)
    lookup[labels[ys, xs]] = dist[ys, xs]
    ref = np.maximum(lookup[labels], 30.0)
    return np.clip((dist - 6.0) / (ref - 6.0), 0.0, 1.0)


def extract_ikea(path: Path, stats: Counter) -> np.ndarray | None:
    """Alpha of an IKEA product on clean white, or None when the shot does not qualify."""
    img = read_rgb(path)
    dist = (255 - img.astype(np.int16)).max(axis=2).astype(np.float32)
    h, w = dist.shape
    border = np.concatenate(
        [dist[:3].ravel(), dist[-3:].ravel(), dist[:, :3].ravel(), dist[:, -3:].ravel()]
    )
    if np.mean(border < 6) < 0.97:
        stats["border not white"] += 1
        return None
    ramp = np.clip((dist - 6.0) / 24.0, 0.0, 1.0)
    bg = background_region(dist, stats)
    if bg is None:
        return None
    # Soft alpha only next to real background; further inside (white/shaded surfaces of the
    # product, glass in front of the white) the product is solid.
    d_bg = cv2.distanceTransform(np.where(bg, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    # (which shots qualify is decided on the fixed ramp, as when the set was first built, so
    # the objects and compositions stay the same; the coverage ramp is the alpha written)
    solid_inside = np.clip((d_bg - 2.0) / 3.0, 0.0, 1.0)
    alpha = np.maximum(ramp, solid_inside)
    alpha[bg] = 0.0
    coverage = np.maximum(coverage_ramp(dist, d_bg), solid_inside)
    coverage[bg] = 0.0
    # Grey floor shadows or gradients show as a wide band of soft alpha along the backdrop.
    solid = ramp >= 0.5
    perimeter = max(
        1,
        int(
            np.count_nonzero(
                solid ^ cv2.erode(solid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            )
        ),
    )
    soft = int(np.count_nonzero((ramp > 0.02) & (ramp < 0.98) & (d_bg <= 8)))
    if soft / perimeter > 3.5:
        stats["wide soft band (shadow/gradient)"] += 1
        return None
    area = int(np.count_nonzero(alpha >= 0.5))
    if area < 0.03 * h * w:
        stats["object too small"] += 1
        return None
    if area > 0.85 * h * w:
        stats["object fills the frame"] += 1
        return None
    alpha = keep_main_component(alpha)
    if alpha is None:
        stats["several components"] += 1
        return None
    # Touching the frame means the product is cut off: not a studio object.
    solid = alpha >= 0.5
    edge = np.concatenate(
        [solid[:2].ravel(), solid[-2:].ravel(), solid[:, :2].ravel(), solid[:, -2:].ravel()]
    )
    if edge.any():
        stats["touches the frame"] += 1
        return None
    stats["ok"] += 1
    return np.where(alpha > 0, coverage, 0.0).astype(np.float32)


def load_ikea(limit_per_group: dict[str, int], stats: Counter) -> list[SourceObject]:
    root = SHARED / "ikea"
    with open(root / "products.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.sort(key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())  # fixed, type-blind
    taken: Counter = Counter()
    objects = []
    for row in rows:
        group = ikea_group(row["type"], row["category"])
        if group is None:
            stats["type not used"] += 1
            continue
        if taken[group] >= limit_per_group.get(group, 0):
            continue
        alpha = extract_ikea(root / row["image"], stats)
        if alpha is None:
            continue
        img = read_rgb(root / row["image"])
        taken[group] += 1
        objects.append(
            SourceObject(f"ikea-{row['id']}", "ikea", group, decontaminate_white(img, alpha), alpha)
        )
    return objects


def load_u2net() -> list[SourceObject]:
    root = SHARED / "u2net-official"
    objects = []
    for img_path in sorted((root / "test_images").iterdir()):
        map_path = root / "u2net_results" / (img_path.stem + ".png")
        if not map_path.exists():
            continue
        img = read_rgb(img_path)
        sal = cv2.imread(str(map_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        if sal.shape != img.shape[:2]:
            sal = cv2.resize(sal, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        alpha = np.clip((sal - 0.1) / 0.8, 0.0, 1.0)
        solid = alpha >= 0.5
        sides = (solid[0], solid[-1], solid[:, 0], solid[:, -1])
        if max(float(side.mean()) for side in sides) > 0.02:
            continue  # cut off by the photo's frame (portraits): not a whole studio object
        cleaned = keep_main_component(alpha, min_fraction=0.0)
        if cleaned is None:
            continue
        objects.append(SourceObject(f"u2net-{img_path.stem}", "u2net", "photo", img, cleaned))
    return objects


def compose_split(objects: list[SourceObject], n_shots: int, out: Path, seed: int) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(len(objects)) for _ in range(n_shots // max(1, len(objects)) + 1)]
    )[:n_shots]
    with open(out / "meta.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "name",
                "source",
                "object_id",
                "object_type",
                "style",
                "colour",
                "shadow",
                "scale",
                "jpeg",
            ]
        )
        for i, idx in enumerate(order):
            obj = objects[int(idx)]
            info: dict = {}
            image, alpha = compose_catalog_shot(obj.rgb, obj.alpha, rng, size=512, info=info)
            name = f"{i:04d}_{obj.name}"
            if info["jpeg_bytes"] is not None:
                (out / "images" / f"{name}.jpg").write_bytes(info["jpeg_bytes"])
            else:
                cv2.imwrite(str(out / "images" / f"{name}.png"), image[..., ::-1])
            cv2.imwrite(str(out / "masks" / f"{name}.png"), np.round(alpha * 255).astype(np.uint8))
            writer.writerow(
                [
                    name,
                    obj.source,
                    obj.name,
                    obj.kind,
                    info["background"],
                    info["colour"],
                    info["shadow"],
                    f"{info['scale']:.3f}",
                    info["jpeg"],
                ]
            )
    print(f"{out}: {n_shots} shots from {len(objects)} objects")


def write_raw_set(out: Path, stats: Counter) -> None:
    """The IKEA photos on white as they are, with the alpha extracted from them."""
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir(parents=True)
    root = SHARED / "ikea"
    with open(root / "products.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        alpha = extract_ikea(root / row["image"], stats)
        if alpha is None:
            continue
        name = f"ikea-{row['id']}"
        shutil.copyfile(root / row["image"], out / "images" / f"{name}.jpg")
        cv2.imwrite(str(out / "masks" / f"{name}.png"), np.round(alpha * 255).astype(np.uint8))
    print(f"raw set: {stats['ok']} photos in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=300)
    parser.add_argument("--val-shots", type=int, default=100)
    parser.add_argument("--procedural-shots", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", action="store_true", help="build only catalog-shots-raw")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} not found: the dev set is built from the shared data.")

    stats: Counter = Counter()
    if args.raw:
        write_raw_set(OUT / "catalog-shots-raw", stats)
        return
    limits = {
        "chair": 36,
        "lamp": 26,
        "plant": 16,
        "table": 30,
        "sofa": 18,
        "clock": 16,
        "storage": 20,
        "tableware": 22,
        "decor": 14,
        "bed": 10,
    }
    u2net = load_u2net()
    print("U^2-Net objects:", ", ".join(o.name for o in u2net))
    objects = u2net + load_ikea(limits, stats)
    print("IKEA extraction:", dict(stats))
    print("objects by type:", dict(Counter(o.kind for o in objects)))
    train = [o for o in objects if not is_val(o.name)]
    val = [o for o in objects if is_val(o.name)]
    print(f"{len(train)} tuning objects, {len(val)} validation objects")
    compose_split(train, args.shots, OUT / "catalog-shots", args.seed)
    compose_split(val, args.val_shots, OUT / "catalog-shots-val", args.seed + 1)

    rng = np.random.default_rng(args.seed + 2)
    procedural = []
    for i in range(args.procedural_shots // 2):
        kind = KINDS[i % len(KINDS)]
        rgb, alpha = procedural_object(kind, rng)
        procedural.append(SourceObject(f"proc-{kind}-{i:02d}", "procedural", kind, rgb, alpha))
    compose_split(
        procedural, args.procedural_shots, OUT / "catalog-shots-procedural", args.seed + 3
    )


if __name__ == "__main__":
    main()
