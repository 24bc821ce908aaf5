"""Rooms, product shots and small catalogs the tests build (no data or weights needed).

Shared by the copy-paste, in-scene, catalog, batch, service and app tests; a test module
imports them from here rather than from another test module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from staging import StagingEngine
from staging.catalog import CatalogIndex
from staging.io import save_image, save_mask

RED = (200, 30, 30)


def room(seed: int, box=(130, 70, 90), size=(256, 320)) -> tuple[np.ndarray, np.ndarray]:
    """A room photo with a red product standing on the floor, and the product's true mask.

    ``box`` is ``(x0, width, height)``; the product's bottom is at 85% of the frame.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.zeros((h, w, 3), np.float32)
    wall = rng.uniform(150, 230, 3)
    horizon = int(h * 0.62)
    img[:horizon] = wall
    img[horizon:] = rng.uniform(60, 140, 3)
    for x in range(0, w, 23):  # floorboards
        img[horizon:, x : x + 2] *= 0.8
    img[30:110, 30:100] = (235, 240, 250)  # a window
    img[50:90, 220:280] = rng.uniform(40, 200, 3)  # a picture
    img += rng.normal(0, 4, img.shape)
    x0, bw, bh = box
    y1 = int(h * 0.85)
    mask = np.zeros((h, w), bool)
    mask[y1 - bh : y1, x0 : x0 + bw] = True
    img[mask] = RED
    return np.clip(img, 0, 255).astype(np.uint8), mask


def catalog_of_rooms(
    root: Path, boxes: list, seed: int, folder: str = "images", csv: str = "catalog.csv"
) -> dict[str, np.ndarray]:
    """Rooms ``room<N>.png`` (one per box) in ``root/folder``, listed with their true product
    masks in ``root/csv`` (``image,mask``): segmenting a room needs a pretrained model, absent
    in tests, and these tests are about staging. Returns each room's mask by name."""
    truths, lines = {}, ["image,mask"]
    for number, box in enumerate(boxes):
        scene, mask = room(seed + number, box=box)
        save_image(root / folder / f"room{number}.png", scene)
        save_mask(root / "masks" / f"room{number}.png", mask)
        lines.append(f"{folder}/room{number}.png,masks/room{number}.png")
        truths[f"room{number}"] = mask
    (root / csv).write_text("\n".join(lines) + "\n")
    return truths


def product_shot(height=120, width=60) -> tuple[np.ndarray, np.ndarray]:
    """A studio shot of a blue product with a lighter top, and its alpha."""
    img = np.full((200, 200, 3), 245, np.uint8)
    alpha = np.zeros((200, 200), np.float32)
    y0, x0 = (200 - height) // 2, (200 - width) // 2
    alpha[y0 : y0 + height, x0 : x0 + width] = 1.0
    img[alpha > 0] = (30, 60, 170)
    img[y0 : y0 + 10, x0 : x0 + width] = (90, 120, 220)
    return img, alpha


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    """An index of four room scenes (true product masks planted) and two studio shots."""
    root = tmp_path_factory.mktemp("catalog")
    folder = root / "images"
    boxes = [(130, 70, 90), (60, 90, 120), (180, 60, 80), (100, 110, 100)]
    truths = catalog_of_rooms(root, boxes, seed=10)
    for number in range(2):
        shot, _ = product_shot(100 + 20 * number, 70)
        save_image(folder / f"studio{number}.png", shot)
    engine = StagingEngine(device="cpu")
    index = CatalogIndex.open(root / "index", create=True)
    engine.update_index(index, folder, csv=root / "catalog.csv", progress=False)
    return root / "index", truths


def upload_rooms(folder, count=3, seed=70):
    """Room photos and their masks, flat (as a browser uploads them), and a CSV naming them."""
    files, lines = [], ["image,mask,type"]
    for number in range(count):
        scene, mask = room(seed + number, box=(60 + 40 * number, 70, 90))
        files += [
            save_image(folder / f"room{number}.png", scene),
            save_mask(folder / f"room{number}-mask.png", mask),
        ]
        lines.append(f"room{number}.png,room{number}-mask.png,Chair")
    (folder / "rooms.csv").write_text("\n".join(lines) + "\n")
    return files + [folder / "rooms.csv"]
