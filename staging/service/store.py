"""The service's metadata and job queue in one SQLite file (``<root>/service.sqlite``)."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY, image TEXT NOT NULL, category TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS creatives (
    product_id TEXT NOT NULL, placement TEXT NOT NULL, theme TEXT NOT NULL,
    path TEXT NOT NULL, bucket TEXT, models TEXT, created REAL NOT NULL,
    PRIMARY KEY (product_id, placement, theme));
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, product_id TEXT NOT NULL, placement TEXT NOT NULL,
    theme TEXT NOT NULL, status TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    token TEXT, lease_until REAL, created REAL NOT NULL, finished REAL);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (status, id);
"""


@dataclass(frozen=True)
class Job:
    id: int
    product_id: str
    placement: str
    theme: str
    status: str
    attempts: int
    token: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "token"}


class ServiceStore:
    """Products, creatives and jobs. Safe across threads and processes (SQLite, WAL)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.root / "service.sqlite", timeout=30, check_same_thread=False,
            isolation_level=None,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``): two workers claiming
        at the same moment are serialised by SQLite, across processes too."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- products and creatives -----------------------------------------------------------------
    def add_product(self, product_id: str, image: Path, category: str | None) -> None:
        self._run(
            "INSERT OR REPLACE INTO products VALUES (?, ?, ?, ?)",
            (product_id, str(image), category, time.time()),
        )

    def product(self, product_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT id, image, category FROM products WHERE id=?", (product_id,))
        return dict(zip(("id", "image", "category"), rows[0], strict=True)) if rows else None

    def creative(self, product_id: str, placement: str, theme: str) -> Path | None:
        rows = self._run(
            "SELECT path FROM creatives WHERE product_id=? AND placement=? AND theme=?",
            (product_id, placement, theme),
        )
        return Path(rows[0][0]) if rows and Path(rows[0][0]).is_file() else None

    # -- the queue ------------------------------------------------------------------------------
    def enqueue(self, product_id: str, placement: str, theme: str) -> Job:
        """Queue a generation, or return the one already queued or running for the same
        creative (a burst of requests for one creative makes one job)."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT id FROM jobs WHERE product_id=? AND placement=? AND theme=? AND "
                "status IN ('queued', 'running')",
                (product_id, placement, theme),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "INSERT INTO jobs (product_id, placement, theme, status, created) "
                    "VALUES (?, ?, ?, 'queued', ?) RETURNING id",
                    (product_id, placement, theme, time.time()),
                ).fetchone()
        return self.job(row[0])

    def claim(self, lease_seconds: float = 300.0) -> Job | None:
        """The newest job that is queued, or running under a lease that ran out (its worker
        died), leased to the caller with a fresh token; None when there is none."""
        now = time.time()
        token = secrets.token_hex(8)
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT id FROM jobs WHERE status='queued' OR (status='running' AND "
                "lease_until < ?) ORDER BY id DESC LIMIT 1",
                (now,),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE jobs SET status='running', token=?, lease_until=?, "
                    "attempts=attempts+1 WHERE id=?",
                    (token, now + lease_seconds, row[0]),
                )
        return None if row is None else self.job(row[0])

    def complete(self, job: Job, path: Path, bucket: str | None, models: dict) -> bool:
        """Store the creative and mark the job done — only if ``job`` still holds the lease
        (a worker whose lease ran out and was retried elsewhere changes nothing)."""
        with self._transaction() as conn:
            held = conn.execute(
                "UPDATE jobs SET status='done', finished=?, error=NULL WHERE id=? AND "
                "token=? AND status='running'",
                (time.time(), job.id, job.token),
            ).rowcount
            if held:
                conn.execute(
                    "INSERT OR REPLACE INTO creatives VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job.product_id, job.placement, job.theme, str(path), bucket,
                     json.dumps(models), time.time()),
                )  # fmt: skip
        return bool(held)

    def fail(self, job: Job, error: str, max_attempts: int = 3) -> None:
        """Back in the queue while attempts remain, else ``failed`` with the error."""
        status = "queued" if job.attempts < max_attempts else "failed"
        self._run(
            "UPDATE jobs SET status=?, error=?, token=NULL, lease_until=NULL WHERE id=? AND "
            "token=?",
            (status, error, job.id, job.token),
        )

    def job(self, job_id: int) -> Job | None:
        rows = self._run(
            "SELECT id, product_id, placement, theme, status, attempts, token, error FROM jobs "
            "WHERE id=?",
            (job_id,),
        )
        return Job(*rows[0]) if rows else None

    def counts(self) -> dict[str, int]:
        """Jobs per status, and products and creatives stored (for /metrics)."""
        counts = {
            f"jobs_{s}": n
            for s, n in self._run("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        }
        counts["products"] = self._run("SELECT COUNT(*) FROM products")[0][0]
        counts["creatives"] = self._run("SELECT COUNT(*) FROM creatives")[0][0]
        return counts
