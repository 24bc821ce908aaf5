"""Render the examples the project ships (made by the project itself, no licence strings
attached), so every tab of the app does something on a fresh clone:

* ``examples/products/`` — product photos: procedural products composed as studio shots with
  soft shadows (the input of every staging mode);
* ``examples/catalog/`` — a small demo catalog for retrieval and copy-paste staging: procedural
  room scenes (wall, floor, window, baseboard, pictures, rugs) with a procedural product
  standing on the floor, plus a few plain studio shots, and ``catalog.csv``
  (``id,image,category,title``). Index it with
  ``staging index examples/catalog --out catalog-index`` (the app does this by itself, in a
  cache folder, the first time it needs a catalog).

Real use means indexing your own catalog; this one only shows the mechanics.

    python scripts/make_examples.py
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np

from staging.evaluate.synth import compose_catalog_shot, procedural_object
from staging.io import save_image, save_mask

ROOT = Path(__file__).resolve().parents[1] / "examples"
OUT = ROOT / "products"
CATALOG = ROOT / "catalog"
CATALOG_MASKS = ROOT / "catalog-masks"  # true product masks of the scenes (not catalog images)
SHOTS = [
    ("chair", "white", 18),
    ("lamp", "gradient", 12),
    ("plant", "pastel", 13),
    ("box", "sweep", 14),
    ("ring", "grey", 17),
]

# Catalog categories of the procedural kinds ("grey"/"white" kinds are vases and jugs).
CATEGORY = {"chair": "chair", "lamp": "lamp", "plant": "plant", "box": "storage", "grey": "vase"}
# (product kind, room style, seed): four rooms per main category, and a few vases.
ROOMS = [
    ("chair", "living", 101),
    ("chair", "scandi", 102),
    ("chair", "loft", 103),
    ("chair", "bedroom", 104),
    ("lamp", "living", 111),
    ("lamp", "scandi", 112),
    ("lamp", "bedroom", 113),
    ("lamp", "loft", 114),
    ("plant", "living", 121),
    ("plant", "scandi", 122),
    ("plant", "loft", 123),
    ("box", "bedroom", 131),
    ("box", "living", 132),
    ("box", "scandi", 133),
    ("grey", "living", 141),
    ("grey", "bedroom", 142),
]
STUDIO = [("chair", "white", 201), ("lamp", "grey", 202), ("plant", "offwhite", 203)]
SCENE_SIZE = (512, 512)  # width, height
JPEG_QUALITY = 84

# Room styles: wall colours, floor kind and colour, extras.
STYLES = {
    "living": {"walls": [(222, 214, 198), (196, 206, 190), (214, 190, 170)], "floor": "wood"},
    "scandi": {"walls": [(236, 234, 228), (226, 228, 230)], "floor": "light-wood"},
    "loft": {"walls": [(150, 92, 74), (120, 124, 128)], "floor": "concrete"},
    "bedroom": {"walls": [(188, 200, 214), (214, 200, 210), (200, 210, 196)], "floor": "carpet"},
}


# --------------------------------------------------------------------------- room scenes


def _noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth value noise around 0 (unit-ish amplitude), cells of ``cell`` px."""
    h, w = shape
    small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _wall(rng, w, h, colour) -> np.ndarray:
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    base = np.asarray(colour, np.float32) + rng.uniform(-6, 6, 3)
    light = 0.9 + 0.12 * yy - 0.05 * xx * rng.choice([-1, 1])
    wall = base * light * (1 + 0.02 * _noise(rng, (h, w), 24))[..., None]
    if rng.random() < 0.35:  # wallpaper stripes
        period = rng.uniform(26, 44)
        stripes = 1 + 0.035 * (np.sin(np.arange(w) / period * 2 * np.pi) > 0)
        wall = wall * stripes[None, :, None]
    return wall


def _floor(rng, w, h, top, kind) -> np.ndarray:
    """A floor from row ``top`` down, drawn in perspective (planks converge far away)."""
    rows = h - top
    yy, xx = np.mgrid[0:rows, 0:w].astype(np.float32)
    depth = (yy + 0.35 * rows) / (1.35 * rows)  # 0.26 far .. 1 near
    cx = w * rng.uniform(0.4, 0.6)
    if kind in ("wood", "light-wood"):
        colour = (
            np.array([150, 104, 66], np.float32)
            if kind == "wood"
            else np.array([206, 176, 134], np.float32)
        )
        colour = colour + rng.uniform(-10, 10, 3)
        u = (xx - cx) / depth  # plank coordinate across the room
        plank_w = rng.uniform(34, 48)
        plank = np.floor(u / plank_w)
        tone = 1 + 0.08 * np.sin(plank * 12.9898) * np.cos(plank * 4.1414)
        grain = 1 + 0.05 * np.sin((u / plank_w) * 40 + 3 * _noise(rng, (rows, w), 16))
        seam = np.abs((u / plank_w) - np.round(u / plank_w)) * plank_w * depth
        gaps = np.where(seam < 0.8, 0.72, 1.0)
        floor = colour * (tone * grain * gaps)[..., None]
    elif kind == "concrete":
        colour = np.array([150, 148, 144], np.float32) + rng.uniform(-8, 8, 3)
        texture = 1 + 0.05 * _noise(rng, (rows, w), 10) + 0.03 * _noise(rng, (rows, w), 40)
        floor = colour * texture[..., None]
    else:  # carpet
        colour = np.array([172, 160, 146], np.float32) + rng.uniform(-14, 14, 3)
        texture = 1 + 0.04 * rng.standard_normal((rows, w)).astype(np.float32)
        floor = colour * cv2.GaussianBlur(texture, (0, 0), 0.8)[..., None]
    floor *= (0.82 + 0.2 * depth)[..., None]  # darker towards the wall
    return floor


def _window(img, rng, x0, y0, x1, y1) -> None:
    """A window with a sky gradient, a white frame with mullions and a sill."""
    h = y1 - y0
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky_top = np.array([150, 190, 232], np.float32)
    sky_bottom = np.array([214, 232, 246], np.float32)
    img[y0:y1, x0:x1] = sky_top + (sky_bottom - sky_top) * t
    if rng.random() < 0.6:  # a distant tree line
        rows = np.arange(x1 - x0)
        ridge = (0.75 + 0.08 * np.sin(rows / rng.uniform(9, 17)) + 0.05 * np.sin(rows / 5.3)) * h
        for i, r in enumerate(ridge.astype(int)):
            img[y0 + r : y1, x0 + i] = (96, 128, 92)
    frame = (244, 244, 240)
    bar = max(4, (x1 - x0) // 22)
    img[y0 : y0 + bar, x0:x1] = frame
    img[y1 - bar : y1, x0:x1] = frame
    img[y0:y1, x0 : x0 + bar] = frame
    img[y0:y1, x1 - bar : x1] = frame
    mx, my = (x0 + x1) // 2, (y0 + y1) // 2
    img[y0:y1, mx - bar // 2 : mx + bar // 2] = frame
    img[my - bar // 2 : my + bar // 2, x0:x1] = frame
    img[y1 : y1 + bar, x0 - bar : x1 + bar] = (232, 230, 226)  # sill
    img[y1 + bar : y1 + bar + 3, x0 - bar : x1 + bar] *= 0.8  # its shadow


def _picture(img, rng, x0, y0, x1, y1) -> None:
    """A framed abstract print."""
    img[y0:y1, x0:x1] = (40, 36, 34)
    m = max(3, (x1 - x0) // 14)
    img[y0 + m : y1 - m, x0 + m : x1 - m] = (238, 234, 226)
    for _ in range(3):
        cx, cy = rng.uniform(x0 + 2 * m, x1 - 2 * m), rng.uniform(y0 + 2 * m, y1 - 2 * m)
        r = rng.uniform(0.1, 0.22) * (x1 - x0)
        palette = [[200, 110, 70], [60, 90, 140], [210, 180, 90]]
        colour = tuple(float(c) for c in palette[int(rng.integers(3))])
        cv2.circle(img, (int(cx), int(cy)), int(r), colour, -1, cv2.LINE_AA)
    img[y1 : y1 + 4, x0 + 4 : x1 + 4] *= 0.85  # drop shadow on the wall


def _curtain(img, rng, x0, x1, bottom, colour) -> None:
    """A curtain hanging from the top between columns ``x0`` and ``x1``: soft vertical folds."""
    width = x1 - x0
    folds = 1 + 0.16 * np.sin(np.arange(width) / rng.uniform(5, 9) + rng.uniform(0, 6))
    folds = folds * (1 - 0.1 * np.abs(np.linspace(-1, 1, width)))
    img[:bottom, x0:x1] = np.asarray(colour, np.float32) * folds[None, :, None]
    img[:bottom, x0:x1] *= np.linspace(0.9, 1.02, bottom, dtype=np.float32)[:, None, None]


def _shelf(img, rng, x0, x1, top, bottom) -> None:
    """A bookcase against the wall, cut by the frame: boards and rows of coloured books."""
    img[top:bottom, x0:x1] = (112, 82, 58)
    rows = int(rng.integers(3, 5))
    edges = np.linspace(top + 6, bottom - 6, rows + 1).astype(int)
    palette = [(170, 60, 50), (50, 80, 130), (210, 190, 120), (70, 110, 80), (230, 226, 214)]
    for r0, r1 in zip(edges[:-1], edges[1:], strict=True):
        img[r0 : r0 + 5, x0:x1] = (138, 104, 74)  # the board
        x = x0 + 4
        while x < x1 - 6:
            bw = int(rng.integers(5, 13))
            bh = int((r1 - r0 - 8) * rng.uniform(0.65, 0.95))
            colour = np.asarray(palette[int(rng.integers(len(palette)))], np.float32)
            img[r1 - bh : r1, x : min(x1 - 4, x + bw)] = colour * rng.uniform(0.8, 1.1)
            x += bw + int(rng.integers(0, 3))


def _place_product(rng, kind, w, h, horizon) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The product (RGB float, alpha) scaled for the room, and its box's bottom-centre."""
    rgb, alpha = procedural_object(kind, rng, size=320)
    ys, xs = np.nonzero(alpha > 0.01)
    rgb = rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    alpha = alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    floor_y = int(rng.uniform(horizon + 0.12 * (h - horizon), h - 0.08 * (h - horizon)))
    target_h = {"chair": 0.46, "lamp": 0.7, "plant": 0.46, "box": 0.3, "grey": 0.36}[kind]
    target_h *= h * rng.uniform(0.9, 1.1) * (0.75 + 0.35 * (floor_y - horizon) / (h - horizon))
    s = min(target_h / alpha.shape[0], 0.55 * w / alpha.shape[1])
    size = (max(1, round(alpha.shape[1] * s)), max(1, round(alpha.shape[0] * s)))
    premul = cv2.resize(rgb * alpha[..., None], size, interpolation=cv2.INTER_AREA)
    a = np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA), 0, 1)
    colour = premul / np.maximum(a, 1e-4)[..., None]
    cx = int(rng.uniform(0.3, 0.7) * w)
    return colour, a, (cx, floor_y)


def render_room(kind: str, style: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A staged scene: a room in ``style`` with a ``kind`` product on the floor.

    Returns ``(image uint8 HxWx3, alpha float32 HxW)`` — the product's true coverage.
    """
    rng = np.random.default_rng(seed)
    w, h = SCENE_SIZE
    spec = STYLES[style]
    horizon = int(h * rng.uniform(0.56, 0.66))
    img = np.zeros((h, w, 3), np.float32)
    wall_colour = spec["walls"][int(rng.integers(len(spec["walls"])))]
    img[:horizon] = _wall(rng, w, horizon, wall_colour)
    img[horizon:] = _floor(rng, w, h, horizon, spec["floor"])

    # Wall decoration: a window on one side and/or a picture on the other.
    side = rng.choice([-1, 1])
    # (Windows are the most salient thing in a room for a saliency net: only beside products
    # that are bigger than them.)
    if kind in ("chair", "plant", "box") and rng.random() < 0.8:
        ww, wh = int(w * rng.uniform(0.18, 0.24)), int(horizon * rng.uniform(0.4, 0.5))
        wx = int(w * 0.5 + side * w * rng.uniform(0.18, 0.28) - ww / 2)
        wy = int(horizon * rng.uniform(0.12, 0.2))
        _window(img, rng, max(8, wx), wy, min(w - 8, wx + ww), wy + wh)
    if rng.random() < 0.6:
        pw, ph = int(w * rng.uniform(0.12, 0.18)), int(horizon * rng.uniform(0.2, 0.3))
        px = int(w * 0.5 - side * w * rng.uniform(0.22, 0.32) - pw / 2)
        py = int(horizon * rng.uniform(0.18, 0.3))
        _picture(img, rng, max(6, px), py, min(w - 6, px + pw), py + ph)

    # Ceiling moulding, a curtain on the window side and a bookcase or panelling elsewhere.
    img[: max(6, int(0.02 * h))] = (242, 240, 236)
    img[max(6, int(0.02 * h)) : max(6, int(0.02 * h)) + 3] *= 0.85
    curtain_colour = [(198, 178, 150), (120, 136, 150), (176, 106, 92), (226, 222, 210)]
    cw = int(w * rng.uniform(0.08, 0.13))
    if side > 0:
        _curtain(img, rng, w - cw, w, horizon, curtain_colour[int(rng.integers(4))])
    else:
        _curtain(img, rng, 0, cw, horizon, curtain_colour[int(rng.integers(4))])
    if rng.random() < 0.6:
        sw = int(w * rng.uniform(0.12, 0.18))
        top = int(horizon * rng.uniform(0.25, 0.45))
        sx0, sx1 = (0, sw) if side > 0 else (w - sw, w)
        _shelf(img, rng, sx0, sx1, top, horizon + int(0.04 * h))
    else:  # wainscoting: panels on the lower wall
        rail = int(horizon * rng.uniform(0.6, 0.7))
        img[rail : rail + 4] *= 0.85
        for x in range(int(rng.integers(10, 40)), w, int(rng.integers(70, 110))):
            img[rail + 12 : horizon - 12, x : x + 2] *= 0.88

    # Baseboard, with the contact shadow of the wall-floor corner.
    bb = max(6, int(0.018 * h))
    img[horizon - bb : horizon] = np.array([238, 236, 232], np.float32) * 0.96
    img[horizon : horizon + 4] *= np.linspace(0.8, 1.0, 4, dtype=np.float32)[:, None, None]

    colour, a, (cx, floor_y) = _place_product(rng, kind, w, h, horizon)
    ph, pw = a.shape
    x0, y0 = int(np.clip(cx - pw // 2, 0, w - pw)), int(np.clip(floor_y - ph, 0, h - ph))

    if rng.random() < 0.3:  # a rug under the product, close to the floor's colour
        rug = np.zeros((h, w), np.float32)
        rw, rh = pw * rng.uniform(0.8, 1.1), max(10, (h - horizon) * rng.uniform(0.1, 0.16))
        centre = (int(x0 + pw / 2), int(y0 + ph - rh * 0.2))
        cv2.ellipse(rug, centre, (int(rw), int(rh)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
        rug_colour = np.array(rng.choice([[170, 90, 70], [80, 100, 130], [210, 200, 180]]))
        rug = rug * 0.45
        img = img * (1 - rug[..., None]) + rug_colour * rug[..., None]

    # Shadows: a soft cast shadow towards the wall and a tight contact shadow under the base.
    alpha_full = np.zeros((h, w), np.float32)
    alpha_full[y0 : y0 + ph, x0 : x0 + pw] = a
    squash = np.array([[1, rng.uniform(-0.5, 0.5) * 0.3, 0], [0, 0.3, 0]], np.float32)
    squash[1, 2] = (y0 + ph) * (1 - 0.3)
    squash[0, 2] = -squash[0, 1] * (y0 + ph)
    cast = cv2.warpAffine(alpha_full, squash, (w, h))
    cast = cv2.GaussianBlur(cast, (0, 0), 6) * 0.35
    cast *= np.clip((np.arange(h, dtype=np.float32) - horizon) / 12 + 1, 0, 1)[:, None]
    foot = np.zeros((h, w), np.float32)
    axes = (int(pw * 0.52), max(3, ph // 28))
    cv2.ellipse(foot, (x0 + pw // 2, y0 + ph - 2), axes, 0, 0, 360, 1.0, -1)
    foot = cv2.GaussianBlur(foot, (0, 0), 3.5) * 0.5
    shade = 1 - np.clip(1 - (1 - cast) * (1 - foot), 0, 0.8)
    img *= shade[..., None]

    # The product, lit a little from the window side.
    light = (1 + 0.06 * side * np.linspace(-1, 1, pw, dtype=np.float32))[None, :, None]
    patch = img[y0 : y0 + ph, x0 : x0 + pw]
    img[y0 : y0 + ph, x0 : x0 + pw] = a[..., None] * colour * light + (1 - a[..., None]) * patch

    img += rng.normal(0, 1.5, img.shape).astype(np.float32)  # sensor noise
    return np.clip(np.round(img), 0, 255).astype(np.uint8), alpha_full


def make_catalog(out: Path = CATALOG, masks: Path = CATALOG_MASKS) -> list[Path]:
    """Write the demo catalog (scenes, studio shots, catalog.csv) to ``out``, and the scenes'
    true product masks to ``masks`` (the CSV's ``mask`` column, relative to the CSV)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    written = []
    for i, (kind, style, seed) in enumerate(ROOMS):
        image, alpha = render_room(kind, style, seed)
        name = f"room-{i + 1:02d}-{CATEGORY[kind]}.jpg"
        written.append(save_image(out / name, image, quality=JPEG_QUALITY))
        mask = save_mask(masks / f"{Path(name).stem}.png", alpha >= 0.5)
        written.append(mask)
        title = f"{CATEGORY[kind].capitalize()} in a {style} room"
        rel = os.path.relpath(mask, out).replace(os.sep, "/")
        rows.append((f"R{i + 1:02d}", name, CATEGORY[kind], title, rel))
    for i, (kind, background, seed) in enumerate(STUDIO):
        rng = np.random.default_rng(seed)
        rgb, alpha = procedural_object(kind, rng, size=384)
        image, _ = compose_catalog_shot(
            rgb, alpha, rng, size=512, style={"background": background, "jpeg": 0}
        )
        name = f"studio-{i + 1:02d}-{CATEGORY[kind]}.jpg"
        written.append(save_image(out / name, image, quality=JPEG_QUALITY))
        title = f"{CATEGORY[kind].capitalize()}, studio shot"
        rows.append((f"S{i + 1:02d}", name, CATEGORY[kind], title, ""))
    with open(out / "catalog.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "image", "category", "title", "mask"])
        writer.writerows(rows)
    written.append(out / "catalog.csv")
    return written


def make_products(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, background, seed in SHOTS:
        rng = np.random.default_rng(seed)
        rgb, alpha = procedural_object(kind, rng, size=384)
        image, _ = compose_catalog_shot(
            rgb, alpha, rng, size=512, style={"background": background, "jpeg": 0}
        )
        written.append(save_image(out / f"{kind}.png", image))
    return written


def main() -> None:
    for path in [*make_products(), *make_catalog()]:
        print(path)


if __name__ == "__main__":
    main()
