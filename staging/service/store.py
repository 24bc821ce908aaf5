"""The service's metadata and job queue: one SQLite file (``<root>/service.sqlite``) by
default, or a PostgreSQL database (``database="postgresql://..."``) for several machines.

The same SQL runs on both; what differs is small and named in the two connection classes
below: the placeholder, how a write transaction starts, the job id column, and how a claim
locks its row (``BEGIN IMMEDIATE`` serialises SQLite writers; PostgreSQL takes the newest job
with ``FOR UPDATE SKIP LOCKED``, so workers never wait on each other's rows). A Redis list
(``queue="redis://..."``) can hold the queue's order on top of either (:class:`_RedisQueue`).
"""

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

from staging.errors import StagingError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY, image TEXT NOT NULL, category TEXT, created DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS creatives (
    product_id TEXT NOT NULL, placement TEXT NOT NULL, theme TEXT NOT NULL,
    path TEXT NOT NULL, bucket TEXT, models TEXT, created DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (product_id, placement, theme));
CREATE TABLE IF NOT EXISTS jobs (
    id {job_id}, product_id TEXT NOT NULL, placement TEXT NOT NULL,
    theme TEXT NOT NULL, status TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    token TEXT, lease_until DOUBLE PRECISION, created DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (status, id);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_open ON jobs (product_id, placement, theme)
    WHERE status IN ('queued', 'running');
"""
_OPEN = "status IN ('queued', 'running')"  # the partial index's predicate, for ON CONFLICT
# A job a worker may take: queued, or running under a lease that ran out (its worker died).
_CLAIMABLE = "(status='queued' OR (status='running' AND lease_until < ?))"


class _SQLite:
    """The default: a file beside the images, safe across threads and processes (WAL)."""

    job_id = "INTEGER PRIMARY KEY AUTOINCREMENT"
    lock_row = ""  # BEGIN IMMEDIATE already serialises writers

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path, timeout=30, check_same_thread=False,
                                    isolation_level=None)  # fmt: skip
        self.conn.execute("PRAGMA journal_mode=WAL")

    def create(self, schema: str) -> None:
        self.conn.executescript(schema)

    def execute(self, sql: str, args: tuple) -> tuple[list[tuple], int]:
        cursor = self.conn.execute(sql, args)
        return cursor.fetchall(), cursor.rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    """A PostgreSQL database (psycopg 3), shared by the service and workers on many hosts."""

    job_id = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    lock_row = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError as exc:
            raise StagingError(
                "A PostgreSQL database needs psycopg: pip install 'psycopg[binary]'"
            ) from exc
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StagingError(f"Cannot connect to the database: {exc}".strip()) from exc

    def create(self, schema: str) -> None:
        with self.conn.transaction():  # one creator at a time: IF NOT EXISTS races otherwise
            self.conn.execute("SELECT pg_advisory_xact_lock(2026120601)")
            for statement in filter(str.strip, schema.split(";")):
                self.conn.execute(statement)

    def execute(self, sql: str, args: tuple) -> tuple[list[tuple], int]:
        cursor = self.conn.execute(sql.replace("?", "%s"), args)
        return (cursor.fetchall() if cursor.description else []), cursor.rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self.conn.close()


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


class _RedisQueue:
    """The order of the queue in a Redis list, newest first (``LPUSH`` + ``LPOP``): a pop is
    one round trip however many workers there are. The jobs themselves (status, lease, token)
    stay in the database, which has the last word: a popped id whose job is no longer queued is
    skipped, and a job whose push was lost (a crash between the two) is still found there."""

    def __init__(self, url: str):
        try:
            import redis
        except ImportError as exc:
            raise StagingError("A Redis queue needs redis-py: pip install redis") from exc
        self.client = redis.Redis.from_url(url)
        self.key = "staging:queue"
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise StagingError(f"Cannot reach the Redis queue at {url}: {exc}") from exc

    def push(self, job_id: int) -> None:
        self.client.lpush(self.key, job_id)

    def pop(self) -> int | None:
        raw = self.client.lpop(self.key)
        return None if raw is None else int(raw)


class ServiceStore:
    """Products, creatives and jobs, in SQLite (default) or PostgreSQL (``database``); the
    queue's order optionally in Redis (``queue="redis://..."``)."""

    def __init__(self, root: str | Path, database: str | None = None, queue: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if database and database.startswith(("postgresql://", "postgres://")):
            self._db: _SQLite | _Postgres = _Postgres(database)
        elif database:
            raise StagingError(f"Unknown database {database!r}: use postgresql://... or none.")
        else:
            self._db = _SQLite(self.root / "service.sqlite")
        self._lock = threading.Lock()
        self._db.create(_SCHEMA.format(job_id=self._db.job_id))
        if queue and not queue.startswith(("redis://", "rediss://", "unix://")):
            raise StagingError(f"Unknown queue {queue!r}: use redis://... or none.")
        self._queue = _RedisQueue(queue) if queue else None

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One write transaction: two workers claiming at the same moment never take the same
        job, across processes and hosts too."""
        with self._lock, self._db.transaction():
            yield self._db

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args)[0]

    # -- products and creatives -----------------------------------------------------------------
    def add_product(self, product_id: str, image: str | Path, category: str | None) -> None:
        """``image``: the photo's name in the service's storage (:mod:`.storage`). Registering
        an id again replaces its photo, so the creatives made from the old one are forgotten
        (their jobs run again on request)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO products VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "image=excluded.image, category=excluded.category, created=excluded.created",
                (product_id, str(image), category, time.time()),
            )
            db.execute("DELETE FROM creatives WHERE product_id=?", (product_id,))

    def product(self, product_id: str) -> dict[str, Any] | None:
        """The product's ``id``, ``image`` (its name in the storage), ``category`` and
        ``created`` (the time it was last registered: a new photo is a new version)."""
        fields = ("id", "image", "category", "created")
        rows = self._run(f"SELECT {', '.join(fields)} FROM products WHERE id=?", (product_id,))
        return dict(zip(fields, rows[0], strict=True)) if rows else None

    def creative(self, product_id: str, placement: str, theme: str) -> tuple[str, float] | None:
        """The stored creative's name in the service's storage and the time it was made (a
        regenerated creative keeps its name and gets a new time), if one was made."""
        rows = self._run(
            "SELECT path, created FROM creatives WHERE product_id=? AND placement=? AND theme=?",
            (product_id, placement, theme),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # -- the queue ------------------------------------------------------------------------------
    def enqueue(self, product_id: str, placement: str, theme: str) -> Job:
        """Queue a generation, or return the one already queued or running for the same
        creative (a burst of requests for one creative makes one job)."""
        key = (product_id, placement, theme)
        open_job = f"SELECT id FROM jobs WHERE product_id=? AND placement=? AND theme=? AND {_OPEN}"
        if found := self._run(open_job, key):  # a read first: a burst writes once
            return self.job(found[0][0])
        while True:
            with self._transaction() as db:
                new, _ = db.execute(
                    "INSERT INTO jobs (product_id, placement, theme, status, created) VALUES "
                    f"(?, ?, ?, 'queued', ?) ON CONFLICT (product_id, placement, theme) "
                    f"WHERE {_OPEN} DO NOTHING RETURNING id",
                    (*key, time.time()),
                )
                rows = new or db.execute(open_job, key)[0]  # one is open already
            if new and self._queue is not None:
                self._queue.push(new[0][0])
            if rows:  # else it finished in between: queue a new one
                return self.job(rows[0][0])

    def claim(self, lease_seconds: float = 300.0) -> Job | None:
        """The newest job that is queued, or running under a lease that ran out (its worker
        died), leased to the caller with a fresh token; None when there is none. With a Redis
        queue its list gives the order; the database is asked when the list is empty."""
        while self._queue is not None and (job_id := self._queue.pop()) is not None:
            job = self._lease(f"id=? AND {_CLAIMABLE}", (job_id,), lease_seconds)
            if job is not None:  # else it was taken through the database, or is done
                return job
        return self._lease(
            f"id=(SELECT id FROM jobs WHERE {_CLAIMABLE} ORDER BY id DESC LIMIT 1"
            f"{self._db.lock_row})",
            (),
            lease_seconds,
        )

    def _lease(self, where: str, args: tuple, lease_seconds: float) -> Job | None:
        """Lease the job ``where`` selects; its ``?`` come after the token and lease and
        before the time that ``_CLAIMABLE`` (in ``where``) compares leases with."""
        now = time.time()
        with self._transaction() as db:
            rows, _ = db.execute(
                "UPDATE jobs SET status='running', token=?, lease_until=?, "
                f"attempts=attempts+1 WHERE {where} RETURNING id",
                (secrets.token_hex(8), now + lease_seconds, *args, now),
            )
        return self.job(rows[0][0]) if rows else None

    def complete(self, job: Job, path: str | Path, bucket: str | None, models: dict) -> bool:
        """Store the creative and mark the job done — only if ``job`` still holds the lease
        (a worker whose lease ran out and was retried elsewhere changes nothing)."""
        with self._transaction() as db:
            _, held = db.execute(
                "UPDATE jobs SET status='done', finished=?, error=NULL WHERE id=? AND "
                "token=? AND status='running'",
                (time.time(), job.id, job.token),
            )
            if held:
                db.execute(
                    "INSERT INTO creatives VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                    "(product_id, placement, theme) DO UPDATE SET path=excluded.path, "
                    "bucket=excluded.bucket, models=excluded.models, created=excluded.created",
                    (job.product_id, job.placement, job.theme, str(path), bucket,
                     json.dumps(models), time.time()),
                )  # fmt: skip
        return bool(held)

    def fail(self, job: Job, error: str, max_attempts: int = 3) -> None:
        """Back in the queue while attempts remain, else ``failed`` with the error."""
        status = "queued" if job.attempts < max_attempts else "failed"
        with self._lock:
            _, changed = self._db.execute(
                "UPDATE jobs SET status=?, error=?, token=NULL, lease_until=NULL WHERE id=? AND "
                "token=?",
                (status, error, job.id, job.token),
            )
        if changed and status == "queued" and self._queue is not None:
            self._queue.push(job.id)

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
