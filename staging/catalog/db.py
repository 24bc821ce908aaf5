"""The catalog index's SQLite side: its schema, and every query the index runs.

``catalog.sqlite`` is the index's source of truth (see :mod:`staging.catalog.index`): one row
per image with its CSV data, its staged verdict and its embedding (a ``float32`` BLOB), plus a
``meta`` table (embedder, dimension, schema version, the CSV of the last update and a
``generation`` counter that grows with every change to the rows). It is opened in WAL mode, so
searches read while an update writes; one :class:`CatalogDB` is shared by the threads of a
process under its lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from staging.errors import StagingError

SCHEMA_VERSION = 1
DB_NAME = "catalog.sqlite"

_SCHEMA = """
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

_INSERT = (
    "INSERT INTO items (path, hash, size, mtime_ns, item_id, category, title, metadata, staged, "
    "staged_confidence, segment_backend, width, height, vector, indexed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class CatalogDB:
    """The connection to one ``catalog.sqlite`` and the lock that guards it."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.lock = threading.RLock()

    @classmethod
    def open(cls, root: Path) -> CatalogDB:
        """Open (creating the tables if needed) the database of the index folder ``root``."""
        db = root / DB_NAME
        try:
            conn = sqlite3.connect(db, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StagingError(f"'{db}' is not a readable catalog index: {exc}") from exc
        self = cls(conn)
        schema = self.meta("schema")
        if schema is not None and int(schema) > SCHEMA_VERSION:
            raise StagingError(
                f"The index at '{root}' was written by a newer version (schema {schema}); "
                "upgrade product-staging-studio or rebuild the index."
            )
        return self

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- reading --------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def count(self, where: str = "") -> int:
        sql = "SELECT COUNT(*) FROM items" + (f" WHERE {where}" if where else "")
        with self.lock:
            return int(self.conn.execute(sql).fetchone()[0])

    def count_categories(self) -> int:
        with self.lock:
            return int(
                self.conn.execute(
                    "SELECT COUNT(DISTINCT category) FROM items WHERE category IS NOT NULL"
                ).fetchone()[0]
            )

    def ids(self, where: str = "", args: Sequence = (), ordered: bool = False) -> np.ndarray:
        """The row ids matching ``where`` (all of them when empty) as int64; ascending when
        ``ordered``, else in the order SQLite finds them."""
        sql = "SELECT id FROM items" + (f" WHERE {where}" if where else "")
        sql += " ORDER BY id" if ordered else ""
        with self.lock:
            return np.fromiter((r[0] for r in self.conn.execute(sql, args)), dtype=np.int64)

    def existing(self) -> dict[str, dict]:
        """Every row's file facts and CSV data, by path (what an update compares against)."""
        with self.lock:
            cur = self.conn.execute(
                "SELECT id, path, hash, size, mtime_ns, item_id, category, title, metadata "
                "FROM items"
            )
            names = [d[0] for d in cur.description]
            return {row[1]: dict(zip(names, row, strict=True)) for row in cur}

    def hashes(self) -> set[str]:
        """The content hashes rows refer to (their masks are named by them)."""
        with self.lock:
            return {r[0] for r in self.conn.execute("SELECT DISTINCT hash FROM items")}

    def rows(self, ids: np.ndarray) -> dict[int, tuple]:
        """What a search hit shows of rows ``ids``, by id (rows gone since are absent)."""
        marks = ",".join("?" * len(ids))
        with self.lock:
            cur = self.conn.execute(
                "SELECT id, path, hash, item_id, category, title, metadata, staged, "
                f"staged_confidence FROM items WHERE id IN ({marks})",
                [int(i) for i in ids],
            )
            return {r[0]: r for r in cur}

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of rows ``ids``, in that order (float32, one row each)."""
        marks = ",".join("?" * len(ids))
        with self.lock:
            rows = dict(
                self.conn.execute(
                    f"SELECT id, vector FROM items WHERE id IN ({marks})", [int(i) for i in ids]
                ).fetchall()
            )
        return np.frombuffer(b"".join(rows[int(i)] for i in ids), dtype=np.float32).reshape(
            len(ids), -1
        )

    def vector_chunks(
        self, where: str, args: Sequence, size: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of the rows matching ``where``, ``size`` rows at a time."""
        with self.lock:
            cur = self.conn.execute(f"SELECT id, vector FROM items WHERE {where}", args)
            while chunk := cur.fetchmany(size):
                ids = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk))
                mat = np.frombuffer(b"".join(r[1] for r in chunk), dtype=np.float32)
                yield ids, mat.reshape(len(chunk), -1)

    # -- writing --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """One write transaction (``BEGIN IMMEDIATE``), under the lock; rolled back on error."""
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield Writer(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")


class Writer:
    """The statements an update runs inside :meth:`CatalogDB.transaction`."""

    def __init__(self, cur: sqlite3.Cursor):
        self.cur = cur

    def set_meta(self, key: str, value: str) -> None:
        self.cur.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def bump_generation(self) -> None:
        """Tell caches keyed by :attr:`CatalogIndex.generation` that the rows changed."""
        row = self.cur.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        self.set_meta("generation", str(int(row[0]) + 1 if row else 1))

    def set_stat(self, row_id: int, size: int, mtime_ns: int) -> None:
        self.cur.execute("UPDATE items SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, row_id))

    def set_csv_values(self, row_id: int, values: tuple) -> None:
        self.cur.execute(
            "UPDATE items SET item_id=?, category=?, title=?, metadata=? WHERE id=?",
            (*values, row_id),
        )

    def delete(self, ids: Sequence[int]) -> None:
        self.cur.executemany("DELETE FROM items WHERE id=?", [(i,) for i in ids])

    def insert(self, values: tuple) -> None:
        """One item row, columns in the schema's order from ``path`` to ``indexed_at``."""
        self.cur.execute(_INSERT, values)


def filter_sql(
    staged_only: bool, category: str | None, shots_only: bool = False
) -> tuple[str, list]:
    """The ``WHERE`` clause (and its arguments) of a filtered search; empty when unfiltered."""
    clauses, args = [], []
    if staged_only:
        clauses.append("staged=1")
    if shots_only:
        clauses.append("staged=0")
    if category is not None:
        clauses.append("category=? COLLATE NOCASE")
        args.append(category)
    return " AND ".join(clauses), args
