"""Masks by image content and model, on disk: no image is segmented twice.

The index, copy-paste, parallax and the app all ask for the same product's mask (and a
pretrained net costs seconds on a CPU), so the probability map is kept under
``<cache_dir>/masks/<model>/<hash>.png`` as a 16-bit PNG, with the backdrop estimate beside it
for backends that model one (``catalog``). The key is a hash of the decoded pixels and their
shape: the same photo re-encoded or re-uploaded hits; an edited one does not. Writes are atomic
(a temporary file renamed into place), so concurrent processes sharing a cache never read a
half-written map; a corrupt entry is a miss.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import cv2
import numpy as np

from staging.io import at_most, atomic_write
from staging.segment.base import Segmentation, Segmenter, to_photo_size


def image_key(image: np.ndarray) -> str:
    """Content hash of an RGB array (pixels and shape)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


class MaskCache:
    """Probability maps (and backdrop estimates) keyed by (model, image content)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _path(self, model: str, key: str, kind: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model)  # "file:x.onnx", "rembg:foo"
        return self.folder / safe / f"{key}.{kind}.png"

    def segment(self, segmenter: Segmenter, rgb: np.ndarray, threshold: float) -> Segmentation:
        """``segmenter``'s segmentation of ``rgb`` through the cache. A big photo is segmented
        at the backend's bounded size (none for a fixed-input net), under its own entry, and
        the maps are brought back to the photo's size."""
        working = rgb if segmenter.max_side is None else at_most(rgb, segmenter.max_side)
        key = image_key(rgb)
        model = f"{segmenter.name}@{segmenter.cache_tag}"
        if working is not rgb:  # maps of a shrunk copy: their own cache entry
            model += f"@{segmenter.max_side}"
        cached = self.get(model, key)
        if cached is None:
            prob = np.clip(segmenter.predict(working).astype(np.float32, copy=False), 0.0, 1.0)
            background = segmenter.background(working)
            self.put(model, key, prob, background)
        else:
            prob, background = cached
        prob, background = to_photo_size(prob, background, rgb.shape[:2])
        return Segmentation(
            image=rgb,
            prob=prob,
            backend=segmenter.name,
            threshold=threshold,
            background_estimate=background,
        )

    def get(self, model: str, key: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(prob float32 HxW, background float32 HxWx3 or None), or None on a miss."""
        prob_file = self._path(model, key, "prob")
        prob = cv2.imread(str(prob_file), cv2.IMREAD_UNCHANGED) if prob_file.is_file() else None
        if prob is None or prob.dtype != np.uint16:
            return None
        background = None
        bg_file = self._path(model, key, "background")
        if bg_file.is_file():
            bgr = cv2.imread(str(bg_file), cv2.IMREAD_UNCHANGED)
            if bgr is None or bgr.shape[:2] != prob.shape:
                return None
            background = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 257.0
        return prob.astype(np.float32) / 65535.0, background

    def put(
        self, model: str, key: str, prob: np.ndarray, background: np.ndarray | None = None
    ) -> None:
        """Store a map; a full disk or a read-only cache only costs the next call a recompute."""
        try:
            self._write(self._path(model, key, "prob"), np.round(prob * 65535).astype(np.uint16))
            if background is not None:
                rgb16 = np.round(np.clip(background, 0, 255) * 257).astype(np.uint16)
                self._write(
                    self._path(model, key, "background"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR)
                )
        except OSError:
            pass

    @staticmethod
    def _write(path: Path, array: np.ndarray) -> None:
        ok, data = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise OSError(f"cannot encode {path.name}")
        atomic_write(path, lambda out: out.write(data.tobytes()), fsync=False)  # a cache: no fsync
