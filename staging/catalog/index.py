"""The catalog index: product images, their masks and embeddings, searchable by similarity.

This is step 1 of the paper's retrieval-assisted copy-paste staging (§5.3: "for a given
segmented product, retrieve top-k similar products from a training collection"; similarity is
the cosine between embeddings of the products, background removed).

Layout of an index folder::

    INDEX_DIR/catalog.sqlite   metadata and the vectors themselves (SQLite, WAL mode)
    INDEX_DIR/vectors.faiss    the faiss index (IndexIDMap2, ids = SQLite row ids): a cache
    INDEX_DIR/masks/<sha256>.png  the product mask of each image, keyed by content hash

**Source of truth.** Every vector is stored in SQLite, as a ``float32`` BLOB in its item's
row, committed in the same transaction as the row. The faiss file is *derived* from those
rows and may always be missing, stale or half-written without losing anything:

* row ids come from ``INTEGER PRIMARY KEY AUTOINCREMENT``, so an id is never reused, and a
  row's vector never changes (a changed image gets a new row), so "which ids does the faiss
  index hold" is all there is to compare;
* on load, the faiss file's ids are compared with the table's and the difference is applied
  from the BLOBs; a missing or unreadable file is rebuilt;
* the file is written to a temporary sibling and renamed over ``vectors.faiss``, so readers
  never see half a file.

Storing the vectors twice (BLOB + faiss) costs disk space, but it makes resuming a killed update
trivially correct and lets the faiss index be rebuilt with other parameters (exact or HNSW)
without re-embedding. Results are right even when only a handful of items match a filter.

The parts, by concern: :mod:`~staging.catalog.db` (the SQLite schema and queries),
:mod:`~staging.catalog.vectors` (faiss, filtered search), :mod:`~staging.catalog.update`
(building and resuming, the writer lock) and :mod:`~staging.catalog.csv` (the catalog CSV and
its path rule). This module is the :class:`CatalogIndex` that joins them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.catalog.csv import read_catalog_csv
from staging.catalog.db import DB_NAME, SCHEMA_VERSION, CatalogDB, filter_sql
from staging.catalog.update import (
    BATCH_SIZE,
    MASKS_DIR,
    WRITER_LOCK,
    WRITER_PID,
    IndexTools,
    UpdateReport,
    run_update,
    writer_lock,
)
from staging.catalog.vectors import (
    EXACT_MAX,
    FAISS_NAME,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    INDEX_TYPES,
    SUBSET_EXACT_MAX,
    Vectors,
    check_type,
    new_faiss_index,
    resolve_type,
)
from staging.errors import StagingError

if TYPE_CHECKING:
    from staging.embed.base import Embedder

__all__ = [
    "BATCH_SIZE",
    "DB_NAME",
    "EXACT_MAX",
    "FAISS_NAME",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "INDEX_TYPES",
    "MASKS_DIR",
    "SCHEMA_VERSION",
    "SUBSET_EXACT_MAX",
    "WRITER_LOCK",
    "WRITER_PID",
    "CatalogIndex",
    "Hit",
    "IndexTools",
    "UpdateReport",
    "new_faiss_index",
    "read_catalog_csv",
    "remove_index_files",
]


@dataclass
class Hit:
    """One search result. ``score`` is the cosine similarity (1 = same direction)."""

    id: str  # the CSV's ``id`` when given, else the file name without extension
    path: Path
    score: float
    category: str | None
    staged: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    mask: Path | None = None  # the stored product mask (PNG)
    row: int = 0  # SQLite row id (= faiss id)


class CatalogIndex:
    """An index folder (see the module docstring). Thread-safe; open it with :meth:`open`.

    >>> report = engine.update_index("catalog-index", "photos/", csv="photos/catalog.csv")
    >>> hits = engine.search("query.jpg", index="catalog-index", k=5, staged_only=False)
    """

    def __init__(self, path: Path, db: CatalogDB, index_type: str = "auto"):
        self.path = path
        self.db = db
        """The SQLite side (:class:`~staging.catalog.db.CatalogDB`)."""
        self.index_type = check_type(index_type)
        self._vectors = Vectors(path, db)

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        create: bool = False,
        rebuild: bool = False,
        index_type: str = "auto",
    ) -> CatalogIndex:
        """Open the index in folder ``path``.

        Args:
            create: make an empty index when there is none (otherwise that is an error).
            rebuild: delete an existing index's files first (implies ``create``).
            index_type: ``auto`` (exact up to :data:`EXACT_MAX` vectors, HNSW above),
                ``exact`` or ``hnsw``: the default for :meth:`search`.
        """
        root = Path(os.fspath(path)).expanduser()
        db = root / DB_NAME
        if rebuild:
            remove_index_files(root)
            create = True
        if not db.is_file():
            if not create:
                raise StagingError(
                    f"No catalog index at '{root}' (no {DB_NAME}). Build one with: "
                    f"staging index CATALOG_FOLDER --out {root}"
                )
            if root.exists() and not root.is_dir():
                raise StagingError(f"'{root}' exists and is not a folder.")
            root.mkdir(parents=True, exist_ok=True)
        return cls(root.resolve(), CatalogDB.open(root), index_type)

    def close(self) -> None:
        with self.db.lock:
            self._vectors.clear()
            self.db.close()

    def __enter__(self) -> CatalogIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties -----------------------------------------------------------------------------
    @property
    def embedder_name(self) -> str | None:
        """The embedder the vectors came from (None for an empty, new index)."""
        return self._meta("embedder")

    @property
    def dim(self) -> int | None:
        value = self._meta("dim")
        return None if value is None else int(value)

    def __len__(self) -> int:
        return self.db.count()

    def __repr__(self) -> str:
        return f"<CatalogIndex '{self.path}' {len(self)} items, embedder {self.embedder_name!r}>"

    def stats(self) -> dict[str, Any]:
        """Item counts, embedder, and the search structure ``auto`` picks."""
        with self.db.lock:
            staged = self.db.count("staged=1")
            cats = self.db.count_categories()
        n = len(self)
        return {
            "path": str(self.path),
            "items": n,
            "staged": int(staged),
            "unstaged": n - int(staged),
            "categories": int(cats),
            "embedder": self.embedder_name,
            "dim": self.dim,
            "index_type": self._resolve_type(None, n),
        }

    @property
    def embedder_version(self) -> int:
        """The embedder version the vectors came from (1 for indexes made before versions)."""
        return int(self._meta("embedder_version") or 1)

    def check_version(self, model: Embedder) -> None:
        """Raise when ``model`` is a newer/older version of the index's embedder: its vectors
        would not be comparable with the stored ones."""
        if self.embedder_name == model.name and self.embedder_version != model.version:
            raise StagingError(
                f"The index at '{self.path}' was built with version {self.embedder_version} of "
                f"{model.name!r}, this is version {model.version}: rebuild the index "
                "(staging index ... --rebuild)."
            )

    def check_embedder(self, name: str | None) -> None:
        """Raise a :class:`StagingError` when ``name`` is not the index's embedder."""
        stored = self.embedder_name
        if stored is None or name in (None, "best") or name == stored:
            return
        raise StagingError(
            f"The index at '{self.path}' was built with {stored!r}; pass --embedder {stored} "
            f"or rebuild it (staging index ... --rebuild) to use {name!r}."
        )

    # -- building -------------------------------------------------------------------------------
    def update(
        self,
        tools: IndexTools,
        folder: str | os.PathLike,
        csv: str | os.PathLike | None = None,
        progress: bool = True,
        *,
        category_column: str | None = None,
        batch_size: int = BATCH_SIZE,
        workers: int | None = None,
    ) -> UpdateReport:
        """Bring the index up to date with ``folder`` (recursively) and the optional ``csv``.

        New and changed images are checked for staging, segmented and embedded; images no
        longer present are dropped; unchanged ones are skipped. A file that cannot be read is
        reported in :attr:`UpdateReport.failed` and skipped. Safe to kill at any moment and
        run again (see the module docstring). One writer at a time: a second update of the
        same index (another process, the app, a batch worker) says which process holds it and
        waits, then only does what the first left to do.

        Args:
            tools: the embedder, segmenter and loader to use (:class:`IndexTools`; most
                callers use :meth:`StagingEngine.update_index`, which builds them). An
                embedder other than the index's own is an error (rebuild the index).
            folder: the catalog folder (every image under it is indexed).
            csv: optional ``id,image,category,title,...`` file; image paths are relative to
                the CSV's folder or to ``folder``; other columns are kept as metadata. When
                omitted, the CSV (and category column) of the previous run are used again.
            category_column: the CSV column used as category (default ``category``).
            batch_size: images per SQLite transaction.
            workers: threads decoding, segmenting and embedding (default: ``tools.threads``,
                else up to 4).
        """
        with writer_lock(self.path, progress):
            return run_update(
                self, tools, folder, csv, progress, category_column, batch_size, workers
            )

    build = update
    """Same as :meth:`update` (building is updating an empty index)."""

    # -- search ---------------------------------------------------------------------------------
    def search(
        self,
        vector: np.ndarray,
        k: int = 5,
        staged_only: bool = True,
        category: str | None = None,
        index_type: str | None = None,
        shots_only: bool = False,
    ) -> list[Hit]:
        """The ``k`` items most similar (cosine) to ``vector``, best first.

        Args:
            vector: a query embedding from the index's embedder (normalised here).
            staged_only: only staged items (product in a scene: the ones whose backgrounds
                copy-paste staging reuses).
            shots_only: only un-staged product shots (whose CSV type and size describe the
                product alone: :mod:`staging.catalog.infer`); not with ``staged_only``.
            category: only items of this category (case-insensitive).
            index_type: ``exact``, ``hnsw`` or ``auto``; default the index's.
        """
        if k < 1:
            raise StagingError(f"k must be at least 1, not {k}.")
        dim = self.dim
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if dim is None or len(self) == 0:
            return []
        if query.shape[1] != dim:
            raise StagingError(
                f"The query vector has {query.shape[1]} dimensions but the index holds "
                f"{dim}-d vectors from {self.embedder_name!r}."
            )
        if staged_only and shots_only:
            raise StagingError("search: staged_only and shots_only exclude each other.")
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        where, args = filter_sql(staged_only, category, shots_only)
        index = self._faiss_for(index_type)
        scores, ids = self._vectors.search(index, query, k, where, args)
        return self._hits(ids, scores)

    def staged_items(self) -> list[Hit]:
        """Every staged scene in the index (score 0), e.g. to analyse them once for copy-paste."""
        return self._items_where("staged=1")

    def shot_items(self) -> list[Hit]:
        """Every un-staged product shot in the index (score 0)."""
        return self._items_where("staged=0")

    def _items_where(self, where: str) -> list[Hit]:
        ids = self.db.ids(where)
        return self._hits(ids, np.zeros(len(ids)))

    def vectors(self, hits: Sequence[Hit]) -> np.ndarray:
        """The stored embeddings of ``hits`` (float32, a unit-norm row each), as searched."""
        if not hits:
            return np.zeros((0, self.dim or 0), np.float32)
        vectors = self.db.vectors(np.array([hit.row for hit in hits], np.int64))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    @property
    def generation(self) -> int:
        """Grows with every change to the items: what a cache of derived facts is keyed by."""
        return int(self._meta("generation") or 0)

    def _hits(self, ids: np.ndarray, scores: np.ndarray) -> list[Hit]:
        if len(ids) == 0:
            return []
        rows = self.db.rows(ids)
        hits = []
        for rid, score in zip(ids, scores, strict=True):
            row = rows.get(int(rid))
            if row is None:  # dropped by a concurrent update since the search
                continue
            _, path, digest, item_id, category, title, metadata, staged, confidence = row
            extra = json.loads(metadata or "{}")
            extra["staged_confidence"] = round(float(confidence), 4)
            hits.append(
                Hit(
                    id=item_id or Path(path).stem,
                    path=Path(path),
                    score=float(score),
                    category=category,
                    staged=bool(staged),
                    metadata=extra,
                    title=title,
                    mask=self.path / MASKS_DIR / f"{digest}.png",
                    row=int(rid),
                )
            )
        return hits

    # -- the faiss index ------------------------------------------------------------------------
    def _resolve_type(self, index_type: str | None, n: int) -> str:
        return resolve_type(index_type or self.index_type, n)

    def _faiss_for(self, index_type: str | None) -> Any:
        """The faiss index of kind ``index_type`` (default the index's), in sync with the table."""
        with self.db.lock:
            return self._vectors.index(self._resolve_type(index_type, len(self)))

    def sync_vectors(self) -> None:
        """Bring ``vectors.faiss`` up to date with the table now (an update ends with this, so
        the first search does not pay for it)."""
        self._faiss_for("auto")

    def _meta(self, key: str) -> str | None:
        return self.db.meta(key)


def remove_index_files(root: Path) -> None:
    """Delete an index folder's own files (never anything else in it)."""
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", FAISS_NAME):
        (root / name).unlink(missing_ok=True)
    shutil.rmtree(root / MASKS_DIR, ignore_errors=True)
