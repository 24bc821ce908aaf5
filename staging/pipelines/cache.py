"""The pipelines' in-memory caches and the keys they use.

Staging reuses a lot between calls: the product's cut-out while the user drags it around a
scene, a scene's analysis and clean plate for every product staged into it. Those values are
large (masks and images of a 1024 px scene), so the caches are bounded by the bytes they hold,
not by how many entries they have: :class:`MemoryCache`, a thread-safe
:class:`cachetools.LRUCache` sized with :func:`nbytes`.

Two keys, for two kinds of cache:

* :func:`content_key` for memory: cheap (a path and its modification time, or a hash of the
  pixels or bytes), so an edited file or array never hits a stale entry;
* :func:`content_digest` for disk caches shared between processes and machines: a hash of a
  file's bytes (not its path), so a copied catalog hits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from cachetools import LRUCache

from staging.errors import StagingError
from staging.io import load_image
from staging.segment.cache import image_key

T = TypeVar("T")
MB = 1 << 20


def nbytes(value: Any, _depth: int = 0) -> int:
    """About how many bytes ``value`` holds: its arrays' buffers, walked through tuples,
    lists, dicts, dataclasses and plain objects (a few levels deep); at least 1."""
    if isinstance(value, np.ndarray):
        return max(1, value.nbytes)
    if _depth > 4 or value is None or isinstance(value, (int, float, str, bool)):
        return 64
    if isinstance(value, (bytes, bytearray, memoryview)):
        return max(1, len(value))
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (tuple, list, set, frozenset)):
        items = list(value)
    elif dataclasses.is_dataclass(value):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif hasattr(value, "__dict__"):
        items = list(vars(value).values())
    else:
        return 64
    return 64 + sum(nbytes(item, _depth + 1) for item in items[:10_000])


class MemoryCache:
    """A least-recently-used cache holding at most ``max_bytes`` (see :func:`nbytes`), safe
    to share between threads. A value is made outside the lock, so two threads asking for the
    same missing key may both make it (the second result is kept, as either is right)."""

    def __init__(self, max_bytes: int):
        self._cache: LRUCache = LRUCache(maxsize=max_bytes, getsizeof=nbytes)
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()`` once per ``key`` while it stays in the cache."""
        with self._lock:
            try:
                return self._cache[key]
            except KeyError:
                pass
        value = make()
        with self._lock, contextlib.suppress(ValueError):  # too big for it: used, not kept
            self._cache[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def bytes(self) -> int:
        """What the cached values hold now."""
        return int(self._cache.currsize)


def content_key(source: Any) -> tuple:
    """A memory-cache key for an image source: file and modification time for a path, a
    content hash for pixels or bytes (an edited file or array never hits a stale entry)."""
    if source is None:
        return (None,)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return ("file", str(path.resolve()), path.stat().st_mtime_ns)
        except OSError as exc:
            raise StagingError(f"{path} is missing or unreadable.") from exc
    if isinstance(source, np.ndarray):
        return ("pixels", str(source.dtype), image_key(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return ("bytes", hashlib.blake2b(bytes(source), digest_size=20).hexdigest())
    raise TypeError(f"cannot key {type(source).__name__}: settle it first (settled)")


def content_digest(*parts: Any) -> str:
    """A content hash for the disk caches: a file's bytes (not its path or time: a copied
    catalog hits), an array's pixels, or the value itself."""
    digest = hashlib.blake2b(digest_size=20)
    for part in parts:
        if isinstance(part, (str, os.PathLike)) and Path(part).is_file():
            digest.update(Path(part).read_bytes())
        elif isinstance(part, np.ndarray):
            digest.update(image_key(part).encode())
        elif isinstance(part, (bytes, bytearray, memoryview)):
            digest.update(bytes(part))
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def settled(source: Any, as_mask: bool = False) -> Any:
    """A path, array or bytes as they are; anything else (a file object, a PIL image) read
    into an array once, so it can be both keyed for the caches and decoded."""
    if source is None or isinstance(
        source, (str, os.PathLike, np.ndarray, bytes, bytearray, memoryview)
    ):
        return source
    if as_mask:
        from staging.io import load_mask

        return load_mask(source)
    return load_image(source)


__all__ = [
    "MB",
    "MemoryCache",
    "content_digest",
    "content_key",
    "nbytes",
    "settled",
]
