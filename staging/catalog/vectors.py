"""The catalog index's vector search: faiss indexes derived from the vectors in SQLite.

``vectors.faiss`` is a cache of the table (see :mod:`staging.catalog.index`): an
``IndexIDMap2`` whose ids are the SQLite row ids. Before a search the in-memory index is brought
in sync with the table (ids the table lost are removed, ids it gained are added from their
BLOBs; an HNSW graph cannot remove points, so a removal there rebuilds it), and a changed
index is written back atomically.

Vectors are unit length, so the cosine is the inner product: exact search is
``IndexFlatIP``; above :data:`EXACT_MAX` vectors (or when asked) the index is
``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``. Filters (staged only, one category) are
applied inside faiss with an ``IDSelector``; an HNSW graph can miss filtered-in points when few
match, so small filtered subsets are searched exactly from their BLOBs instead, and a filtered
HNSW search that finds fewer than ``k`` hits falls back to exact too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.errors import StagingError
from staging.io import atomic_path

if TYPE_CHECKING:
    from staging.catalog.db import CatalogDB

FAISS_NAME = "vectors.faiss"
INDEX_TYPES = ("auto", "exact", "hnsw")
EXACT_MAX = 50_000
"""``auto`` uses exact search up to this many vectors, HNSW above (exact search over this
many 512-d vectors stays within a few milliseconds per query on one core)."""

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
"""HNSW parameters, chosen with ``staging bench retrieval`` on a million clustered 512-d
vectors: the best recall for a search that stays interactive (measurements: BENCHMARKS.md)."""

SUBSET_EXACT_MAX = 20_000
"""A filtered search whose filter keeps at most this many items is done exactly on them."""


def new_faiss_index(
    kind: str,
    dim: int,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
) -> Any:
    """An empty ``IndexIDMap2`` over exact inner product or HNSW (inner product)."""
    import faiss

    if kind == "exact":
        base = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = ef_construction
    else:
        raise StagingError(f"Unknown index type {kind!r}; use exact or hnsw.")
    return faiss.IndexIDMap2(base)


def check_type(kind: str | None) -> str:
    kind = kind or "auto"
    if kind not in INDEX_TYPES:
        raise StagingError(f"Unknown index type {kind!r}; use one of: {', '.join(INDEX_TYPES)}.")
    return kind


def resolve_type(kind: str | None, n: int) -> str:
    """``exact`` or ``hnsw``: what index type ``kind`` means for ``n`` vectors."""
    kind = check_type(kind)
    if kind == "auto":
        return "hnsw" if n > EXACT_MAX else "exact"
    return kind


class Vectors:
    """The faiss indexes of one index folder, one per type, each kept for the table's
    ``generation`` it was synced at. Guarded by the database's lock."""

    def __init__(self, folder: Path, db: CatalogDB):
        self.folder = folder
        self.db = db
        self._cache: dict[str, tuple[int, Any]] = {}  # kind -> (generation, faiss index)

    def clear(self) -> None:
        with self.db.lock:
            self._cache.clear()

    def index(self, kind: str) -> Any:
        """The in-memory faiss index of type ``kind`` (``exact`` or ``hnsw``), in sync with the
        table. ``vectors.faiss`` holds the type ``auto`` picks; another type is built in memory
        from the stored vectors (and kept for later searches)."""
        with self.db.lock:
            generation = int(self.db.meta("generation") or 0)
            cached = self._cache.get(kind)
            if cached is not None and cached[0] == generation:
                return cached[1]
            persist = kind == resolve_type("auto", self.db.count())
            index = cached[1] if cached is not None else None
            if index is None and persist:
                index = self._read_file(kind)
            index, changed = self._reconcile(index, kind)
            if persist and changed:
                self._write_file(index)
            self._cache[kind] = (generation, index)
            return index

    def search(
        self, index: Any, query: np.ndarray, k: int, where: str, args: Sequence
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` of the ``k`` rows matching ``where`` nearest to ``query`` (one
        unit row), best first; exact whenever the graph could miss filtered-in rows."""
        allowed = None
        if where:
            allowed = self.db.ids(where, args)
            if allowed.size == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            if allowed.size == index.ntotal:
                allowed = None
        if allowed is None:
            return faiss_search(index, query, k, None)
        if _kind_of(index) == "exact":
            return faiss_search(index, query, k, allowed)
        if allowed.size <= SUBSET_EXACT_MAX:
            return self.exact_subset(query, k, where, args)
        scores, ids = faiss_search(index, query, k, allowed)
        if len(ids) < min(k, allowed.size):  # the graph lost some filtered-in points
            return self.exact_subset(query, k, where, args)
        return scores, ids

    def exact_subset(
        self, query: np.ndarray, k: int, where: str, args: Sequence
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among the rows matching ``where``, straight from the stored vectors."""
        best_ids = np.zeros(0, np.int64)
        best_scores = np.zeros(0, np.float32)
        for ids, mat in self.db.vector_chunks(where, args):
            scores = mat @ query[0]
            best_ids = np.concatenate([best_ids, ids])
            best_scores = np.concatenate([best_scores, scores])
            if best_ids.size > k:
                keep = np.argpartition(-best_scores, k)[:k]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = np.lexsort((best_ids, -best_scores))[:k]
        return best_scores[order], best_ids[order]

    # -- vectors.faiss ----------------------------------------------------------------------------
    def _dim(self) -> int:
        return int(self.db.meta("dim") or 0)

    def _read_file(self, kind: str) -> Any:
        import faiss

        file = self.folder / FAISS_NAME
        if not file.is_file():
            return None
        try:
            index = faiss.read_index(str(file))
        except RuntimeError:
            return None  # unreadable: rebuilt from the stored vectors
        if not isinstance(index, faiss.IndexIDMap2) or index.d != self._dim():
            return None
        return index if _kind_of(index) == kind else None

    def _write_file(self, index: Any) -> None:
        import faiss

        with atomic_path(self.folder / FAISS_NAME) as tmp:
            faiss.write_index(index, str(tmp))

    def _reconcile(self, index: Any, kind: str) -> tuple[Any, bool]:
        """Make ``index`` hold exactly the table's ids; returns ``(index, changed)``."""
        import faiss

        db_ids = self.db.ids(ordered=True)
        if index is not None:
            have = faiss.vector_to_array(index.id_map).astype(np.int64)
            to_remove = np.setdiff1d(have, db_ids, assume_unique=True)
            to_add = np.setdiff1d(db_ids, have, assume_unique=True)
            if to_remove.size == 0 and to_add.size == 0:
                return index, False
            if to_remove.size and kind == "exact":
                index.remove_ids(to_remove)
            elif to_remove.size:  # HNSW graphs cannot drop points: rebuild
                index, to_add = None, db_ids
        else:
            to_add = db_ids
        if index is None:
            index = new_faiss_index(kind, self._dim())
        for start in range(0, to_add.size, 8192):
            ids = to_add[start : start + 8192]
            index.add_with_ids(self.db.vectors(ids), ids)
        return index, True


def _kind_of(index: Any) -> str:
    import faiss

    return "hnsw" if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW) else "exact"


def faiss_search(
    index: Any, query: np.ndarray, k: int, allowed: np.ndarray | None, ef_search: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, ids)`` of faiss's top ``k`` for one query, among ``allowed`` ids if given."""
    import faiss

    params: Any = None
    if _kind_of(index) == "hnsw":
        ef = max(ef_search or HNSW_EF_SEARCH, k)
        params = faiss.SearchParametersHNSW(efSearch=ef)
        if allowed is not None:  # filtered: the graph walk must look further
            params.efSearch = max(ef, 2 * k, min(4096, int(ef * index.ntotal / allowed.size)))
    elif allowed is not None:
        params = faiss.SearchParameters()
    if allowed is not None:
        selector = faiss.IDSelectorBatch(allowed)
        params.sel = selector
    k_eff = min(k, index.ntotal)
    # One query: OpenMP threads cost more than they bring on a small machine. The setting is
    # per calling thread, so concurrent searches and builds elsewhere are unaffected.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, ids = index.search(query, k_eff, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
