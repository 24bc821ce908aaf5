"""Staged (scene) vs un-staged (plain backdrop) classifier: synthetic images + real IKEA data."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from staging.segment.staged import FEATURE_NAMES, StagedVerdict, classify_staged

IKEA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ikea"
SIZE = 512


def _product_on(background: np.ndarray, seed: int = 0) -> np.ndarray:
    """A chair-like product with a soft floor shadow on the given backdrop (float HxWx3)."""
    rng = np.random.default_rng(seed)
    img = background.astype(np.float32).copy()
    h, w = img.shape[:2]
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (w // 2, int(h * 0.82)), (int(w * 0.25), int(h * 0.04)), 0, 0, 360, 1, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 12)
    img *= (1 - 0.35 * shadow / shadow.max())[..., None]
    wood = np.array([150, 105, 70], np.float32)
    fabric = np.array([60, 90, 140], np.float32)
    x0, x1 = int(w * 0.3), int(w * 0.7)
    img[int(h * 0.2) : int(h * 0.55), x0 : x0 + 30] = wood  # back posts
    img[int(h * 0.2) : int(h * 0.55), x1 - 30 : x1] = wood
    img[int(h * 0.25) : int(h * 0.45), x0 + 30 : x1 - 30] = fabric  # back rest
    img[int(h * 0.52) : int(h * 0.6), x0 - 10 : x1 + 10] = fabric  # seat
    for x in (x0, x0 + 40, x1 - 55, x1 - 15):  # legs
        img[int(h * 0.6) : int(h * 0.82), x : x + 15] = wood
    img += rng.normal(0, 1.5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _solid(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.float32), (SIZE, SIZE, 3))


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    t = np.linspace(0, 1, SIZE, dtype=np.float32)[:, None, None]
    col = np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t
    return np.broadcast_to(col, (SIZE, SIZE, 3))


def _room(seed: int) -> np.ndarray:
    """A busy room-like scene: textured wall and wooden floor, furniture, a window, clutter."""
    rng = np.random.default_rng(seed)
    h = w = SIZE
    img = np.zeros((h, w, 3), np.float32)
    horizon = int(h * rng.uniform(0.55, 0.7))
    img[:horizon] = rng.uniform(150, 230, 3)  # wall
    img[:horizon] += rng.normal(0, 10, (horizon, w, 1))  # plaster texture
    floor = rng.uniform(90, 170, 3) * np.array([1.0, 0.8, 0.6])
    planks = (np.arange(w) // 40 % 2 * 20)[None, :, None]  # floor boards
    img[horizon:] = floor + planks + rng.normal(0, 12, (h - horizon, w, 1))
    canvas = np.ascontiguousarray(img)
    cv2.rectangle(canvas, (int(w * 0.6), 30), (w - 40, int(h * 0.4)), (235, 245, 255), -1)
    cv2.line(canvas, (int(w * 0.8), 30), (int(w * 0.8), int(h * 0.4)), (90, 80, 70), 6)
    for _ in range(int(rng.integers(5, 9))):  # furniture blocks touching floor and edges
        x = int(rng.integers(-60, w - 40))
        bw, bh = int(rng.integers(60, 200)), int(rng.integers(60, 260))
        y = horizon + int(rng.integers(-20, 60))
        colour = tuple(float(c) for c in rng.uniform(20, 240, 3))
        cv2.rectangle(canvas, (x, y - bh), (x + bw, y), colour, -1)
        cv2.rectangle(canvas, (x, y - bh), (x + bw, y), (30, 30, 30), 2)
    for _ in range(40):  # small objects: books, plants, frames
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.circle(canvas, (x, y), int(rng.integers(3, 15)), colour, -1)
    shelf_w = int(rng.integers(80, 140))  # a bookshelf cut by the left edge
    for y in range(20, horizon, 55):
        cv2.line(canvas, (0, y), (shelf_w, y), (80, 60, 40), 4)
        x = 0
        while x < shelf_w:
            spine = int(rng.integers(5, 14))
            colour = tuple(float(c) for c in rng.uniform(20, 240, 3))
            cv2.rectangle(
                canvas, (x, y - int(rng.integers(30, 50))), (x + spine, y - 2), colour, -1
            )
            x += spine + 1
    rug_y = h - int(rng.integers(40, 90))  # a striped rug cut by the bottom edge
    for i, x in enumerate(range(int(w * 0.2), w, 16)):
        colour = (200.0, 60.0, 50.0) if i % 2 else (240.0, 230.0, 210.0)
        cv2.rectangle(canvas, (x, rug_y), (x + 15, h), colour, -1)
    cv2.line(canvas, (0, horizon), (w, horizon), (60, 50, 40), 3)
    canvas += rng.normal(0, 4, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8)


PLAIN_BACKDROPS = {
    "white": _solid((255, 255, 255)),
    "off-white": _solid((246, 244, 240)),
    "pastel-pink": _solid((245, 215, 225)),
    "pastel-blue": _solid((205, 225, 245)),
    "light-grey": _solid((200, 200, 200)),
    "grey-gradient": _gradient((235, 235, 235), (170, 170, 175)),
    "mint-to-peach": _gradient((210, 240, 225), (250, 220, 200)),
}


@pytest.mark.parametrize("name", sorted(PLAIN_BACKDROPS))
def test_product_on_plain_backdrop_is_not_staged(name: str) -> None:
    verdict = classify_staged(_product_on(PLAIN_BACKDROPS[name]))
    assert not verdict.staged, verdict
    assert verdict.confidence > 0.8, verdict


@pytest.mark.parametrize("seed", range(6))
def test_busy_room_scene_is_staged(seed: int) -> None:
    verdict = classify_staged(_room(seed))
    assert verdict.staged, (verdict, verdict.features)
    assert verdict.confidence > 0.8, verdict


def test_verdict_bool_confidence_and_features() -> None:
    plain = classify_staged(_product_on(PLAIN_BACKDROPS["white"]))
    room = classify_staged(_room(0))
    assert isinstance(plain, StagedVerdict)
    assert bool(room) is True and bool(plain) is False
    if plain:
        pytest.fail("an un-staged verdict must be falsy")
    for v in (plain, room):
        assert 0.5 <= v.confidence <= 1.0
        assert 0.0 <= v.score <= 1.0
        assert v.confidence == pytest.approx(v.score if v.staged else 1 - v.score)
        assert set(v.features) <= set(FEATURE_NAMES)
        assert {"border_fit", "border_edges", "bg_area"} <= set(v.features)
        assert all(np.isfinite(list(v.features.values())))
        assert "features" not in repr(v)


def test_odd_shapes_and_bad_input() -> None:
    for shape in ((40, 30, 3), (64, 900, 3), (1200, 80, 3)):
        v = classify_staged(np.full(shape, 250, np.uint8))
        assert not v.staged and 0.5 <= v.confidence <= 1.0
    with pytest.raises(ValueError):
        classify_staged(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError):
        classify_staged(np.zeros((32, 32, 3), np.float32))


def _sample(rows: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    key = lambda r: hashlib.md5(r["image"].encode()).hexdigest()  # noqa: E731
    return sorted(rows, key=key)[:n]


@pytest.mark.shared_data
@pytest.mark.skipif(not IKEA.is_dir(), reason=f"IKEA data not found at {IKEA}")
def test_real_ikea_balanced_accuracy() -> None:
    from PIL import Image

    def rows(name: str) -> list[dict[str, str]]:
        with open(IKEA / name, newline="") as fh:
            return list(csv.DictReader(fh))

    def staged(row: dict[str, str]) -> bool:
        with Image.open(IKEA / row["image"]) as im:
            im.draft("RGB", (512, 512))  # fast JPEG decode at reduced size
            return classify_staged(np.asarray(im.convert("RGB"))).staged

    products = _sample(rows("products.csv"), 60)
    rooms = _sample(rows("rooms.csv"), 40)
    tnr = np.mean([not staged(r) for r in products])
    tpr = np.mean([staged(r) for r in rooms])
    assert (tpr + tnr) / 2 >= 0.95, f"staged recall {tpr:.3f}, un-staged recall {tnr:.3f}"
