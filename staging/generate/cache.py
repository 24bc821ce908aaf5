"""A persistent cache of generated images (seed 001: "find mask & generated image for bucket").

The seed's service looks a generation up before asking a GPU worker for one, keyed by what
determines it; with buckets (:mod:`staging.compose.buckets`) one cached image then serves every
ad size of its bucket. Here the key is a hash of **product content, prompt, bucket, seed and
model** (plus any extra settings that change pixels: steps, guidance, ControlNet scale ...),
so a renamed product file still hits and a changed setting never returns a stale image.

Storage is local and boring on purpose: SQLite (WAL mode, so readers never block the writer
and other processes can share the folder) holds the metadata, and each image is a PNG file
under ``images/``. A write goes **file first, row second**, and the file is written atomically
(:func:`staging.io.save_image`: temporary file + rename); a crash therefore leaves at worst an
unreferenced file, never a row pointing at a partial image. A row whose file has gone missing
or is unreadable counts as a miss and is dropped. The object is thread-safe (one connection
behind a lock) and :meth:`GenerationCache.get_or_generate` makes concurrent requests for the
same key generate once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from staging.errors import StagingError

_KEY = re.compile(r"[0-9a-f]{64}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    meta TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def product_hash(rgb: np.ndarray, alpha: np.ndarray | None = None) -> str:
    """SHA-256 of the product's pixels and alpha (hex).

    Hashes content, not file names: the same product saved twice, or re-encoded losslessly,
    hits the same cache entries. The alpha is quantised to 8 bits first (the precision masks
    are stored at), so an alpha computed in float and the same alpha read back from its PNG
    (or given as a bool / uint8 mask) give the same hash.
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise StagingError(f"product_hash needs an RGB uint8 (H, W, 3) image, not {rgb.shape}.")
    digest = hashlib.sha256()
    digest.update(f"rgb{rgb.shape}".encode())
    digest.update(rgb.tobytes())
    if alpha is not None:
        a = np.asarray(alpha)
        if a.shape != rgb.shape[:2]:
            raise StagingError(f"The alpha {a.shape} does not match the image {rgb.shape[:2]}.")
        if a.dtype == np.bool_:
            a8 = a.astype(np.uint8) * 255
        elif np.issubdtype(a.dtype, np.integer):
            a8 = a.astype(np.uint8)
        else:
            a8 = np.rint(np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
        digest.update(b"alpha")
        digest.update(np.ascontiguousarray(a8).tobytes())
    return digest.hexdigest()


class GenerationCache:
    """Generated images keyed by :meth:`key`; ``folder/cache.sqlite`` + ``folder/images/``.

    ``hits`` and ``misses`` count :meth:`get` results since the object was created.
    """

    def __init__(self, folder: str | os.PathLike, image_format: str = "png") -> None:
        if image_format not in ("png", "webp"):
            raise StagingError(
                f"image_format must be 'png' or 'webp' (lossless), not {image_format!r}."
            )
        self.folder = Path(folder)
        self.image_format = image_format
        self.hits = 0
        self.misses = 0
        self._lock = threading.RLock()
        self._pending: dict[str, threading.Lock] = {}
        try:
            (self.folder / "images").mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.folder / "cache.sqlite", timeout=30.0, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StagingError(
                f"Cannot open the generation cache in '{self.folder}': {exc}"
            ) from exc

    # -- keys -----------------------------------------------------------------------------

    @staticmethod
    def product_hash(rgb: np.ndarray, alpha: np.ndarray | None = None) -> str:
        """See :func:`product_hash`."""
        return product_hash(rgb, alpha)

    @staticmethod
    def key(
        product_hash: str,
        prompt: str,
        bucket: Any,
        seed: int,
        model: str,
        **extra: Any,
    ) -> str:
        """SHA-256 (hex) of everything that determines a generation.

        ``bucket`` is a :class:`~staging.compose.buckets.Bucket` (its bins and ``r``), a tuple,
        or None for an un-bucketed target; ``extra`` holds any other pixel-changing settings
        (JSON-serialisable). Keyword order does not matter.
        """
        if hasattr(bucket, "bins") and hasattr(bucket, "r"):
            bucket_value: Any = [*bucket.bins, float(bucket.r)]
        elif isinstance(bucket, (tuple, list)):
            bucket_value = list(bucket)
        else:
            bucket_value = bucket
        payload = {
            "product": str(product_hash),
            "prompt": str(prompt),
            "bucket": bucket_value,
            "seed": int(seed),
            "model": str(model),
            "extra": extra,
        }
        try:
            text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_jsonable)
        except TypeError as exc:
            raise StagingError(f"Cache key settings must be JSON-serialisable: {exc}") from exc
        return hashlib.sha256(text.encode()).hexdigest()

    # -- access ---------------------------------------------------------------------------

    def get(self, key: str) -> np.ndarray | None:
        """The cached image (RGB uint8) or None; counts a hit or a miss."""
        path = self._lookup(key)
        image = self._read(path) if path is not None else None
        if path is not None and image is None:
            self._forget(key)  # the file vanished or is damaged: regenerate it
        with self._lock:
            if image is None:
                self.misses += 1
            else:
                self.hits += 1
        return image

    def meta(self, key: str) -> dict[str, Any] | None:
        """The metadata stored with ``key`` (plus ``width``, ``height``, ``created``), or None."""
        _check_key(key)
        with self._lock:
            row = self._db.execute(
                "SELECT meta, width, height, created FROM generations WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return {**json.loads(row[0]), "width": row[1], "height": row[2], "created": row[3]}

    def put(self, key: str, image: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        """Store ``image`` (RGB uint8) under ``key`` with JSON-serialisable ``meta``."""
        from staging.io import save_image

        _check_key(key)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise StagingError(
                f"Only RGB uint8 (H, W, 3) images can be cached, not {image.dtype} {image.shape}."
            )
        try:
            meta_text = json.dumps(meta or {}, sort_keys=True, default=_jsonable)
        except TypeError as exc:
            raise StagingError(f"Cache metadata must be JSON-serialisable: {exc}") from exc
        rel = f"images/{key[:2]}/{key}.{self.image_format}"
        if self.image_format == "webp":
            from PIL import Image

            from staging.io import atomic_write

            pil = Image.fromarray(image)
            atomic_write(self.folder / rel, lambda fh: pil.save(fh, format="WEBP", lossless=True))
        else:
            save_image(self.folder / rel, image)
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO generations (key, file, width, height, meta, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, rel, image.shape[1], image.shape[0], meta_text, time.time()),
            )

    def get_or_generate(
        self,
        key: str,
        generate: Callable[[], np.ndarray],
        meta: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """The cached image, or ``generate()``'s result after storing it. Threads asking for
        the same key at once wait for one generation instead of each running their own."""
        image = self.get(key)
        if image is not None:
            return image
        with self._lock:
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            path = self._lookup(key)  # another thread may have finished meanwhile
            image = self._read(path) if path is not None else None
            if image is None:
                image = generate()
                self.put(key, image, meta)
        with self._lock:
            self._pending.pop(key, None)
        return image

    def __contains__(self, key: object) -> bool:
        return (
            isinstance(key, str)
            and _KEY.fullmatch(key) is not None
            and (self._lookup(key) is not None)
        )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def keys(self) -> Iterator[str]:
        with self._lock:
            rows = self._db.execute("SELECT key FROM generations ORDER BY created").fetchall()
        return iter(r[0] for r in rows)

    def stats(self) -> dict[str, Any]:
        """Entries, hits, misses and hit rate (of this object's lookups)."""
        lookups = self.hits + self.misses
        return {
            "entries": len(self),
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / lookups if lookups else 0.0,
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> GenerationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _lookup(self, key: str) -> Path | None:
        _check_key(key)
        with self._lock:
            row = self._db.execute("SELECT file FROM generations WHERE key = ?", (key,)).fetchone()
        return None if row is None else self.folder / row[0]

    def _read(self, path: Path) -> np.ndarray | None:
        from staging.errors import ImageLoadError
        from staging.io import load_image

        if not path.is_file():
            return None
        try:
            return load_image(path)
        except ImageLoadError:
            return None

    def _forget(self, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM generations WHERE key = ?", (key,))


def _check_key(key: str) -> None:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise StagingError(
            f"Not a cache key: {key!r} (make keys with GenerationCache.key(...), 64 hex digits)."
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
