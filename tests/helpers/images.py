"""Small synthetic images the tests share: a textured room, a bright square, PNG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def textured_room(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A wall over a floor, a few vertical edges and noise: something with structure."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float64)
    img[: h * 2 // 3] = (200, 190, 170)
    img[h * 2 // 3 :] = (120, 90, 60)
    img[:, w // 5 : w // 5 + 3] = (40, 40, 40)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def square_image(h: int, w: int, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A bright (slightly coloured) rectangle on a dark page, and its true mask."""
    y0, y1, x0, x1 = box
    image = np.full((h, w, 3), 20, np.uint8)
    image[y0:y1, x0:x1] = (240, 230, 220)
    truth = np.zeros((h, w), bool)
    truth[y0:y1, x0:x1] = True
    return image, truth


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()
