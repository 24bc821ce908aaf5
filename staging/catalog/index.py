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
* on load, the faiss file's ids are compared with the table's: ids the table no longer has are
  removed, ids it lacks are added from their BLOBs (an HNSW graph cannot remove points, so a
  removal there rebuilds it from the BLOBs); a missing or unreadable file is rebuilt;
* the file is written to a temporary sibling and renamed over ``vectors.faiss``
  (:func:`os.replace`), so readers never see half a file.

**Resume.** ``update`` commits one SQLite transaction per batch of images (rows and vectors
together), after the batch's mask files are written (atomically). A run killed at any moment
therefore leaves whole batches only; the next run sees those files as unchanged (same size and
modification time, or same content hash) and carries on with the rest. Mask files written for
a batch that never committed are orphans, removed at the end of the next run. Storing the
vectors twice (BLOB + faiss) costs disk space, but it makes this logic trivially correct and
lets the faiss index be rebuilt with other parameters (exact or HNSW) without re-embedding.

**Search.** Vectors are unit length, so the cosine is the inner product: exact search is
``IndexFlatIP``; above :data:`EXACT_MAX` vectors (or when asked) the index is
``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``. Filters (staged only, one category) are
applied inside faiss with an ``IDSelector``; an HNSW graph can miss filtered-in points when few
match, so small filtered subsets are searched exactly from their BLOBs instead, and a filtered
HNSW search that finds fewer than ``k`` hits falls back to exact too. Results are therefore
right even when only a handful of items match.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from staging.errors import ImageLoadError, ModelNotAvailableError, StagingError

if TYPE_CHECKING:
    from staging.embed.base import Embedder

SCHEMA_VERSION = 1
DB_NAME = "catalog.sqlite"
FAISS_NAME = "vectors.faiss"
MASKS_DIR = "masks"
WRITER_LOCK = ".writer.lock"  # one update at a time, across processes
WRITER_PID = ".writer.pid"  # who holds it, for the "waiting" message
_log = logging.getLogger(__name__)

INDEX_TYPES = ("auto", "exact", "hnsw")
EXACT_MAX = 50_000
"""``auto`` uses exact search up to this many vectors, HNSW above (exact search over 50k
512-d vectors takes ~5 ms per query on one core)."""

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
"""HNSW parameters, tuned with ``staging bench retrieval`` (see the README): on 1M clustered
512-d vectors (2 cores) the build takes ~4.5 min and efSearch 256 gives recall@10 0.966 at
0.8 ms p50 / 2.8 ms p99 per query (efSearch 128: 0.94; 512: 0.977 at 1.2 ms)."""

SUBSET_EXACT_MAX = 20_000
"""A filtered search whose filter keeps at most this many items is done exactly on them."""

BATCH_SIZE = 32
_CSV_KNOWN = ("id", "image", "title", "mask")


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


@dataclass
class UpdateReport:
    """What one ``update`` run did."""

    index: Path
    embedder: str
    dim: int
    added: int = 0
    changed: int = 0  # re-embedded because the file's content changed
    removed: int = 0
    unchanged: int = 0
    metadata_updated: int = 0  # same image, new CSV data
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    total: int = 0  # items in the index afterwards
    seconds: float = 0.0  # wall time of the whole run
    processing_seconds: float = 0.0  # time spent on new or changed images

    @property
    def processed(self) -> int:
        return self.added + self.changed

    @property
    def images_per_second(self) -> float:
        if self.processed == 0 or self.processing_seconds <= 0:
            return 0.0
        return self.processed / self.processing_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": str(self.index),
            "embedder": self.embedder,
            "dim": self.dim,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "metadata_updated": self.metadata_updated,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "total": self.total,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 2),
        }


@dataclass
class _CsvRow:
    item_id: str | None
    category: str | None
    title: str | None
    metadata: dict[str, str]
    mask: Path | None = None  # a known product mask from the CSV's ``mask`` column


@dataclass
class _Processed:
    path: Path
    size: int
    mtime_ns: int
    hash: str = ""
    staged: bool = False
    confidence: float = 0.0
    backend: str = ""
    mask: np.ndarray | None = None
    image: np.ndarray | None = None  # kept only until a batched embedder has run
    vector: np.ndarray | None = None
    width: int = 0
    height: int = 0
    error: str | None = None


@dataclass
class IndexTools:
    """What an update needs from outside. The index loads no model and never calls the engine:
    it is handed these (:meth:`StagingEngine.update_index` builds them from its settings)."""

    embedder: Embedder
    segment: Callable[[np.ndarray, bool], tuple[str, np.ndarray]]
    """``(rgb, staged) -> (backend name, bool mask)``; raises ModelNotAvailableError when a
    staged scene needs a model that is not on disk."""
    load: Callable[[Path], np.ndarray]
    """Reads an image file as RGB uint8 (with the caller's pixel limit)."""
    max_pixels: int
    threads: int | None = None
    notice: str | None = None
    """Said once at the start of an update (e.g. that scenes without masks will be skipped)."""


class CatalogIndex:
    """An index folder (see the module docstring). Thread-safe; open it with :meth:`open`.

    >>> report = engine.update_index("catalog-index", "photos/", csv="photos/catalog.csv")
    >>> hits = engine.search("query.jpg", index="catalog-index", k=5, staged_only=False)
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, index_type: str = "auto"):
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self.index_type = _check_type(index_type)
        self._faiss: dict[str, tuple[int, Any]] = {}  # kind -> (generation, faiss index)

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
        try:
            conn = sqlite3.connect(db, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            _create_schema(conn)
        except sqlite3.DatabaseError as exc:
            raise StagingError(f"'{db}' is not a readable catalog index: {exc}") from exc
        schema = _meta(conn, "schema")
        if schema is not None and int(schema) > SCHEMA_VERSION:
            raise StagingError(
                f"The index at '{root}' was written by a newer version (schema {schema}); "
                "upgrade product-staging-studio or rebuild the index."
            )
        return cls(root.resolve(), conn, index_type)

    def close(self) -> None:
        with self._lock:
            self._faiss.clear()
            self._conn.close()

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
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def __repr__(self) -> str:
        return f"<CatalogIndex '{self.path}' {len(self)} items, embedder {self.embedder_name!r}>"

    def stats(self) -> dict[str, Any]:
        """Item counts, embedder, and the search structure ``auto`` picks."""
        with self._lock:
            staged = self._conn.execute("SELECT COUNT(*) FROM items WHERE staged=1").fetchone()[0]
            cats = self._conn.execute(
                "SELECT COUNT(DISTINCT category) FROM items WHERE category IS NOT NULL"
            ).fetchone()[0]
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
        with self._writer(progress):
            return self._update(tools, folder, csv, progress, category_column, batch_size, workers)

    @contextlib.contextmanager
    def _writer(self, progress: bool) -> Iterable[None]:
        """Hold the index's writer lock (a file lock: across processes and threads)."""
        lock = FileLock(str(self.path / WRITER_LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            try:
                holder = (self.path / WRITER_PID).read_text().strip()
            except OSError:
                holder = "another process"
            _say(f"The index at '{self.path}' is being updated by {holder}; waiting.", progress)
            lock.acquire()
        try:
            (self.path / WRITER_PID).write_text(f"PID {os.getpid()} on {socket.gethostname()}")
            yield
        finally:
            lock.release()

    def _update(
        self,
        tools: IndexTools,
        folder: str | os.PathLike,
        csv: str | os.PathLike | None,
        progress: bool,
        category_column: str | None,
        batch_size: int,
        workers: int | None,
    ) -> UpdateReport:
        from tqdm import tqdm

        t_start = time.perf_counter()
        folder = Path(os.fspath(folder)).expanduser()
        if not folder.exists():
            raise StagingError(f"No such catalog folder: '{folder}'.")
        model = tools.embedder
        self._check_embedder_for_update(model)
        report = UpdateReport(self.path, model.name, int(model.dim))
        if tools.notice:
            _say(tools.notice, progress)

        csv_path, category_column = self._csv_settings(csv, category_column)
        from staging.io import list_images

        files = {p.resolve(): None for p in list_images(folder)}
        rows: dict[Path, _CsvRow] = {}
        if csv_path is not None:
            rows, missing = read_catalog_csv(csv_path, folder, category_column)
            report.failed.extend(missing)
            for path in rows:
                files.setdefault(path, None)  # CSV images outside the folder count too

        existing = self._existing()
        todo: list[tuple[Path, os.stat_result]] = []
        meta_updates: list[tuple[Any, ...]] = []
        for path in sorted(files):
            try:
                st = path.stat()
            except OSError as exc:
                report.failed.append((str(path), f"cannot read the file ({exc.strerror})"))
                continue
            old = existing.get(str(path))
            if old is not None and (old["size"], old["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
                report.unchanged += 1
                self._queue_meta_update(old, csv_path, rows.get(path), meta_updates, report)
                continue
            todo.append((path, st))

        # Files whose stat changed but whose content did not only need their stat refreshed.
        still: list[tuple[Path, os.stat_result]] = []
        for path, st in todo:
            old = existing.get(str(path))
            if old is not None and _sha256(path) == old["hash"]:
                report.unchanged += 1
                meta_updates.append(("stat", st.st_size, st.st_mtime_ns, old["id"]))
                self._queue_meta_update(old, csv_path, rows.get(path), meta_updates, report)
            else:
                still.append((path, st))
        todo = still

        gone = [row["id"] for p, row in existing.items() if Path(p) not in files]
        with self._lock, self._transaction() as cur:
            self._set_meta(cur, "embedder", model.name)
            self._set_meta(cur, "embedder_version", str(model.version))
            self._set_meta(cur, "dim", str(model.dim))
            self._set_meta(cur, "schema", str(SCHEMA_VERSION))
            if csv_path is not None:
                self._set_meta(cur, "csv", str(csv_path))
                self._set_meta(cur, "category_column", category_column)
            for update in meta_updates:
                if update[0] == "stat":
                    cur.execute("UPDATE items SET size=?, mtime_ns=? WHERE id=?", update[1:])
                else:
                    cur.execute(
                        "UPDATE items SET item_id=?, category=?, title=?, metadata=? WHERE id=?",
                        update[1:],
                    )
            if gone:
                cur.executemany("DELETE FROM items WHERE id=?", [(i,) for i in gone])
            if gone or any(update[0] == "meta" for update in meta_updates):
                self._bump_generation(cur)  # rows' CSV data count too (CatalogScenes)
        report.removed = len(gone)

        t_proc = time.perf_counter()
        n_workers = workers or tools.threads or min(4, os.cpu_count() or 1)
        batched = _has_batched_embedding(model)
        masks_dir = self.path / MASKS_DIR
        masks_dir.mkdir(exist_ok=True)
        bar = tqdm(total=len(todo), desc="index", unit="img", disable=not progress or not todo)
        try:
            with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
                for start in range(0, len(todo), max(1, batch_size)):
                    chunk = todo[start : start + max(1, batch_size)]
                    results = list(
                        pool.map(
                            lambda item: _process(
                                tools, *item, batched, _known_mask(rows, item[0])
                            ),
                            chunk,
                        )
                    )
                    if batched:
                        _embed_batch(model, results)
                    self._commit_batch(results, existing, rows, masks_dir, report)
                    bar.update(len(chunk))
        finally:
            bar.close()
        report.processing_seconds = time.perf_counter() - t_proc

        self._cleanup_masks()
        self._faiss_for("auto")  # bring vectors.faiss up to date now, not at the first search
        report.total = len(self)
        report.seconds = time.perf_counter() - t_start
        return report

    build = update
    """Same as :meth:`update` (building is updating an empty index)."""

    def _check_embedder_for_update(self, model: Embedder) -> None:
        self.check_embedder(model.name)
        self.check_version(model)
        dim = self.dim
        if dim is not None and dim != model.dim:
            raise StagingError(
                f"The index at '{self.path}' holds {dim}-d vectors but embedder {model.name!r} "
                f"now makes {model.dim}-d ones; rebuild the index (staging index ... --rebuild)."
            )

    def _csv_settings(
        self, csv_file: str | os.PathLike | None, category_column: str | None
    ) -> tuple[Path | None, str]:
        if csv_file is not None:
            path = Path(os.fspath(csv_file)).expanduser().resolve()
            if not path.is_file():
                raise StagingError(f"No such CSV file: '{path}'.")
            return path, category_column or "category"
        stored = self._meta("csv")
        column = category_column or self._meta("category_column") or "category"
        if stored and Path(stored).is_file():
            return Path(stored), column
        return None, column

    @staticmethod
    def _queue_meta_update(
        old: dict, csv_path: Path | None, row: _CsvRow | None, queue: list, report: UpdateReport
    ) -> None:
        """Refresh an unchanged image's CSV data when the CSV changed (no re-embedding)."""
        if csv_path is None:
            return  # no CSV at all: keep what the rows have
        values = _csv_values(row)
        if values != (old["item_id"], old["category"], old["title"], old["metadata"]):
            queue.append(("meta", *values, old["id"]))
            report.metadata_updated += 1

    def _commit_batch(
        self,
        results: list[_Processed],
        existing: dict[str, dict],
        rows: dict[Path, _CsvRow],
        masks_dir: Path,
        report: UpdateReport,
    ) -> None:
        from staging.io import save_mask

        good = []
        for item in results:
            if item.error is not None:
                report.failed.append((str(item.path), item.error))
                continue
            target = masks_dir / f"{item.hash}.png"
            if not target.exists():
                save_mask(target, item.mask)
            good.append(item)
        now = time.time()
        with self._lock, self._transaction() as cur:
            for item in good:
                old = existing.get(str(item.path))
                if old is not None:
                    cur.execute("DELETE FROM items WHERE id=?", (old["id"],))
                    report.changed += 1
                else:
                    report.added += 1
                item_id, category, title, metadata = _csv_values(rows.get(item.path))
                cur.execute(
                    "INSERT INTO items (path, hash, size, mtime_ns, item_id, category, title, "
                    "metadata, staged, staged_confidence, segment_backend, width, height, vector, "
                    "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(item.path),
                        item.hash,
                        item.size,
                        item.mtime_ns,
                        item_id,
                        category,
                        title,
                        metadata,
                        int(item.staged),
                        float(item.confidence),
                        item.backend,
                        item.width,
                        item.height,
                        np.ascontiguousarray(item.vector, dtype=np.float32).tobytes(),
                        now,
                    ),
                )
            if good:
                self._bump_generation(cur)

    def _existing(self) -> dict[str, dict]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT id, path, hash, size, mtime_ns, item_id, category, title, metadata "
                "FROM items"
            )
            names = [d[0] for d in cur.description]
            return {row[1]: dict(zip(names, row, strict=True)) for row in cur}

    def _cleanup_masks(self) -> None:
        """Remove masks no row refers to (dropped images, batches killed before commit)."""
        masks_dir = self.path / MASKS_DIR
        if not masks_dir.is_dir():
            return
        with self._lock:
            used = {r[0] for r in self._conn.execute("SELECT DISTINCT hash FROM items")}
        for entry in masks_dir.iterdir():
            stem = entry.name.split(".")[0] if not entry.name.startswith(".") else ""
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)  # a write killed halfway
            elif entry.suffix == ".png" and stem not in used:
                entry.unlink(missing_ok=True)

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
        where, args = _filter_sql(staged_only, category, shots_only)
        index = self._faiss_for(index_type)
        allowed = None
        if where:
            with self._lock:
                allowed = np.fromiter(
                    (r[0] for r in self._conn.execute(f"SELECT id FROM items WHERE {where}", args)),
                    dtype=np.int64,
                )
            if allowed.size == 0:
                return []
            if allowed.size == index.ntotal:
                allowed = None
        if allowed is None:
            scores, ids = _faiss_search(index, query, k, None)
        elif _is_flat(index):
            scores, ids = _faiss_search(index, query, k, allowed)
        elif allowed.size <= SUBSET_EXACT_MAX:
            scores, ids = self._exact_subset(query, k, where, args)
        else:
            scores, ids = _faiss_search(index, query, k, allowed)
            if len(ids) < min(k, allowed.size):  # the graph lost some filtered-in points
                scores, ids = self._exact_subset(query, k, where, args)
        return self._hits(ids, scores)

    def _exact_subset(
        self, query: np.ndarray, k: int, where: str, args: Sequence
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among the rows matching ``where``, straight from the stored vectors."""
        best_ids = np.zeros(0, np.int64)
        best_scores = np.zeros(0, np.float32)
        with self._lock:
            cur = self._conn.execute(f"SELECT id, vector FROM items WHERE {where}", args)
            while chunk := cur.fetchmany(4096):
                ids = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk))
                mat = np.frombuffer(b"".join(r[1] for r in chunk), dtype=np.float32)
                scores = mat.reshape(len(chunk), -1) @ query[0]
                best_ids = np.concatenate([best_ids, ids])
                best_scores = np.concatenate([best_scores, scores])
                if best_ids.size > k:
                    keep = np.argpartition(-best_scores, k)[:k]
                    best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = np.lexsort((best_ids, -best_scores))[:k]
        return best_scores[order], best_ids[order]

    def staged_items(self) -> list[Hit]:
        """Every staged scene in the index (score 0), e.g. to analyse them once for copy-paste."""
        return self._items_where("staged=1")

    def shot_items(self) -> list[Hit]:
        """Every un-staged product shot in the index (score 0)."""
        return self._items_where("staged=0")

    def _items_where(self, where: str) -> list[Hit]:
        with self._lock:
            ids = [r[0] for r in self._conn.execute(f"SELECT id FROM items WHERE {where}")]
        return self._hits(np.array(ids, np.int64), np.zeros(len(ids)))

    def vectors(self, hits: Sequence[Hit]) -> np.ndarray:
        """The stored embeddings of ``hits`` (float32, a unit-norm row each), as searched."""
        if not hits:
            return np.zeros((0, self.dim or 0), np.float32)
        with self._lock:
            vectors = self._vectors(np.array([hit.row for hit in hits], np.int64))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    @property
    def generation(self) -> int:
        """Grows with every change to the items: what a cache of derived facts is keyed by."""
        return int(self._meta("generation") or 0)

    def _hits(self, ids: np.ndarray, scores: np.ndarray) -> list[Hit]:
        if len(ids) == 0:
            return []
        marks = ",".join("?" * len(ids))
        with self._lock:
            cur = self._conn.execute(
                "SELECT id, path, hash, item_id, category, title, metadata, staged, "
                f"staged_confidence FROM items WHERE id IN ({marks})",
                [int(i) for i in ids],
            )
            rows = {r[0]: r for r in cur}
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
        kind = _check_type(index_type or self.index_type)
        if kind == "auto":
            return "hnsw" if n > EXACT_MAX else "exact"
        return kind

    def _faiss_for(self, index_type: str | None) -> Any:
        """The in-memory faiss index of kind ``index_type``, in sync with the table.

        ``vectors.faiss`` holds the kind ``auto`` picks; a forced other kind is built in memory
        from the stored vectors (and kept for later searches).
        """
        with self._lock:
            generation = int(self._meta("generation") or 0)
            n = len(self)
            kind = self._resolve_type(index_type, n)
            cached = self._faiss.get(kind)
            if cached is not None and cached[0] == generation:
                return cached[1]
            persist = kind == self._resolve_type("auto", n)
            index = cached[1] if cached is not None else None
            if index is None and persist:
                index = self._read_faiss_file(kind)
            index, changed = self._reconcile(index, kind)
            if persist and changed:
                self._write_faiss_file(index)
            self._faiss[kind] = (generation, index)
            return index

    def _read_faiss_file(self, kind: str) -> Any:
        import faiss

        file = self.path / FAISS_NAME
        if not file.is_file():
            return None
        try:
            index = faiss.read_index(str(file))
        except RuntimeError:
            return None  # unreadable: rebuilt from the stored vectors
        if not isinstance(index, faiss.IndexIDMap2) or index.d != self.dim:
            return None
        return index if _kind_of(index) == kind else None

    def _write_faiss_file(self, index: Any) -> None:
        import faiss

        target = self.path / FAISS_NAME
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            faiss.write_index(index, str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _reconcile(self, index: Any, kind: str) -> tuple[Any, bool]:
        """Make ``index`` hold exactly the table's ids; returns ``(index, changed)``."""
        import faiss

        db_ids = np.fromiter(
            (r[0] for r in self._conn.execute("SELECT id FROM items ORDER BY id")),
            dtype=np.int64,
        )
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
            index = new_faiss_index(kind, int(self.dim or 0))
        for start in range(0, to_add.size, 8192):
            ids = to_add[start : start + 8192]
            index.add_with_ids(self._vectors(ids), ids)
        return index, True

    def _vectors(self, ids: np.ndarray) -> np.ndarray:
        marks = ",".join("?" * len(ids))
        rows = dict(
            self._conn.execute(
                f"SELECT id, vector FROM items WHERE id IN ({marks})", [int(i) for i in ids]
            ).fetchall()
        )
        return np.frombuffer(b"".join(rows[int(i)] for i in ids), dtype=np.float32).reshape(
            len(ids), -1
        )

    # -- SQLite helpers -------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        with self._lock:
            return _meta(self._conn, key)

    @staticmethod
    def _set_meta(cur: sqlite3.Cursor, key: str, value: str) -> None:
        cur.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    @classmethod
    def _bump_generation(cls, cur: sqlite3.Cursor) -> None:
        row = cur.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        cls._set_meta(cur, "generation", str(int(row[0]) + 1 if row else 1))

    @contextlib.contextmanager
    def _transaction(self) -> Iterable[sqlite3.Cursor]:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


# -- module helpers ----------------------------------------------------------------------------
def _say(message: str, progress: bool) -> None:
    """Tell the person running the update (beside the progress bar), else the log."""
    if progress:
        print(message, file=sys.stderr, flush=True)
    else:
        _log.warning(message)


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


def remove_index_files(root: Path) -> None:
    """Delete an index folder's own files (never anything else in it)."""
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", FAISS_NAME):
        (root / name).unlink(missing_ok=True)
    shutil.rmtree(root / MASKS_DIR, ignore_errors=True)


def read_catalog_csv(
    csv_path: Path, folder: Path, category_column: str = "category"
) -> tuple[dict[Path, _CsvRow], list[tuple[str, str]]]:
    """Rows of an ``id,image,category,title,...`` CSV by resolved image path, and the rows
    whose image was not found (as ``(path, reason)``)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StagingError(f"Cannot read the CSV '{csv_path}': {exc}") from exc
    if "image" not in columns:
        raise StagingError(
            f"The CSV '{csv_path}' has no 'image' column (columns: {', '.join(columns)})."
        )
    if category_column not in columns and category_column != "category":
        raise StagingError(
            f"The CSV '{csv_path}' has no column {category_column!r} for categories "
            f"(columns: {', '.join(columns)})."
        )
    known = {*_CSV_KNOWN, category_column}
    out: dict[Path, _CsvRow] = {}
    missing: list[tuple[str, str]] = []
    for row in rows:
        name = (row.get("image") or "").strip()
        if not name:
            continue
        path = _resolve_image(name, csv_path.parent, folder)
        if path is None:
            missing.append((name, f"listed in {csv_path.name} but not found"))
            continue
        mask_name = _blank(row.get("mask"))
        mask = None
        if mask_name is not None:
            mask = _resolve_image(mask_name, csv_path.parent, folder)
            if mask is None:
                missing.append((mask_name, f"mask listed in {csv_path.name} but not found"))
        out[path] = _CsvRow(
            item_id=_blank(row.get("id")),
            category=_blank(row.get(category_column)),
            title=_blank(row.get("title")),
            metadata={k: (v or "") for k, v in row.items() if k and k not in known},
            mask=mask,
        )
    return out, missing


def _resolve_image(name: str, csv_dir: Path, folder: Path) -> Path | None:
    candidate = Path(name).expanduser()
    options = [candidate] if candidate.is_absolute() else [csv_dir / candidate, folder / candidate]
    for option in options:
        if option.is_file():
            return option.resolve()
    return None


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _csv_values(row: _CsvRow | None) -> tuple[str | None, str | None, str | None, str]:
    if row is None:
        return None, None, None, "{}"
    return row.item_id, row.category, row.title, _dump(row.metadata)


def _dump(metadata: dict) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_batched_embedding(model: Embedder) -> bool:
    """Does the embedder batch for real (ONNX/torch), or just loop over ``_embed_one``?"""
    from staging.embed.base import Embedder

    return type(model).embed_batch is not Embedder.embed_batch


def _known_mask(rows: dict[Path, _CsvRow], path: Path) -> Path | None:
    row = rows.get(path)
    return None if row is None else row.mask


def _process(
    tools: IndexTools,
    path: Path,
    st: os.stat_result,
    batched: bool,
    mask_path: Path | None = None,
) -> _Processed:
    """Hash, staged test, mask and (unless batched) embedding of one image, in a worker.

    A mask given by the CSV (``mask`` column) is used as it is instead of segmenting: catalogs
    often have product masks already, and they beat any segmenter on staged scenes.
    """
    from staging.io import load_mask
    from staging.segment.staged import classify_staged

    item = _Processed(path, int(st.st_size), int(st.st_mtime_ns))
    try:
        item.hash = _sha256(path)
        rgb = tools.load(path)
        verdict = classify_staged(rgb)
        item.staged, item.confidence = bool(verdict.staged), float(verdict.confidence)
        if mask_path is not None:
            size = (rgb.shape[1], rgb.shape[0])
            item.backend = "csv-mask"
            item.mask = load_mask(mask_path, size=size, max_pixels=tools.max_pixels) >= 0.5
        else:
            item.backend, item.mask = tools.segment(rgb, item.staged)
        item.height, item.width = rgb.shape[:2]
        if batched:
            item.image = rgb
        else:
            item.vector = np.asarray(tools.embedder.embed(rgb, item.mask), dtype=np.float32)
    except ImageLoadError as exc:
        item.error = str(exc)
    except ModelNotAvailableError:  # (an OSError too: before it) said once at the start
        item.error = "a staged scene: segmenting it needs a pretrained model (see above)"
    except OSError as exc:
        item.error = f"cannot read the file ({exc.strerror or exc})"
    except StagingError:
        raise  # a missing model or a bad setting: every image would fail, so stop
    except Exception as exc:  # noqa: BLE001 - one odd image must not stop a long run
        item.error = f"{type(exc).__name__}: {exc}"
    return item


def _embed_batch(model: Embedder, results: list[_Processed]) -> None:
    ready = [r for r in results if r.error is None]
    if not ready:
        return
    vectors = model.embed_batch([r.image for r in ready], [r.mask for r in ready])
    for item, vector in zip(ready, vectors, strict=True):
        item.vector = np.asarray(vector, dtype=np.float32)
        item.image = None


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            hash TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            item_id TEXT,
            category TEXT,
            title TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            staged INTEGER NOT NULL,
            staged_confidence REAL NOT NULL,
            segment_backend TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            vector BLOB NOT NULL,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS items_filter ON items (staged, category COLLATE NOCASE);
        CREATE INDEX IF NOT EXISTS items_hash ON items (hash);
        """
    )


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else row[0]


def _check_type(kind: str | None) -> str:
    kind = kind or "auto"
    if kind not in INDEX_TYPES:
        raise StagingError(f"Unknown index type {kind!r}; use one of: {', '.join(INDEX_TYPES)}.")
    return kind


def _kind_of(index: Any) -> str:
    import faiss

    return "hnsw" if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW) else "exact"


def _is_flat(index: Any) -> bool:
    return _kind_of(index) == "exact"


def _filter_sql(
    staged_only: bool, category: str | None, shots_only: bool = False
) -> tuple[str, list]:
    clauses, args = [], []
    if staged_only:
        clauses.append("staged=1")
    if shots_only:
        clauses.append("staged=0")
    if category is not None:
        clauses.append("category=? COLLATE NOCASE")
        args.append(category)
    return " AND ".join(clauses), args


def _faiss_search(
    index: Any, query: np.ndarray, k: int, allowed: np.ndarray | None, ef_search: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
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
    # One query: OpenMP threads cost more than they bring (5x slower on 2 cores). The setting
    # is per calling thread, so concurrent searches and builds elsewhere are unaffected.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, ids = index.search(query, k_eff, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
