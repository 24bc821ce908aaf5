"""``staging batch``: stage a whole catalog, resumably, with a manifest of every output.

One *unit* of work is one product in one mode (``copy-paste``, ``vanilla`` or ``prompt``); it
writes one file per placement (generated modes: the placements share generations through the
aspect-ratio buckets and the generation cache) or per candidate scene (copy-paste, at the
scene's own size: placement ``scene``).

Nothing is lost or done twice, whatever stops a run (an error, Ctrl-C, ``kill -9``):

* every image is written atomically (a temporary file renamed into place), so no output is
  ever half-written;
* a unit's rows go into the manifest (``manifest.sqlite`` in the output folder) in one
  transaction after all its files are written; a run killed in between redoes that unit next
  time and overwrites the same files (rows are keyed by product, mode, placement and
  candidate, so none is duplicated);
* re-running skips the units the manifest has as done with the same settings, and retries
  the ones that failed;
* a product that cannot be read, or a generation that fails, is recorded as that unit's error
  and the batch goes on.

The manifest's ``outputs`` table has one row per file: product id, mode, placement, bucket,
candidate, path (relative to the output folder), seconds and the models that made it; the
``units`` table one row per unit: status (``done``/``error``), error, seconds and the settings.
Workers are threads sharing one engine (its models are loaded once), or with ``engine_kind=
"ray"`` actors on a Ray cluster (:mod:`staging.batch_ray`); either way only the main thread
writes the manifest.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tqdm import tqdm

from staging.batch_unit import (
    BatchRun,
    Outcome,
    Product,
    failure_message,
    read_products,
    stage_unit,
)
from staging.errors import StagingError

MODES = ("copy-paste", "vanilla", "prompt")
MANIFEST = "manifest.sqlite"
LOCK = ".batch.lock"  # one batch per output folder at a time
_SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    product_id TEXT NOT NULL, mode TEXT NOT NULL, settings TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, seconds REAL, image TEXT, finished REAL,
    PRIMARY KEY (product_id, mode, settings));
CREATE TABLE IF NOT EXISTS outputs (
    product_id TEXT NOT NULL, mode TEXT NOT NULL, placement TEXT NOT NULL,
    candidate INTEGER NOT NULL, bucket TEXT, path TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, seconds REAL, models TEXT,
    PRIMARY KEY (product_id, mode, placement, candidate));
"""


@dataclass
class BatchSummary:
    """What a run did. ``failed`` lists ``(product id, mode, error)``."""

    out: Path
    units: int = 0
    done: int = 0
    skipped: int = 0
    outputs: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out)}


class Manifest:
    """The batch's SQLite manifest (see the module doc). Used from one thread."""

    def __init__(self, path: Path):
        self.path = path
        self._conn = sqlite3.connect(path, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def done(self, product_id: str, mode: str, settings: str) -> bool:
        row = self._conn.execute(
            "SELECT status FROM units WHERE product_id=? AND mode=? AND settings=?",
            (product_id, mode, settings),
        ).fetchone()
        return row is not None and row[0] == "done"

    def record(
        self,
        product: Product,
        mode: str,
        settings: str,
        outputs: list[dict[str, Any]],
        seconds: float,
        error: str | None = None,
        expected: list[str] | None = None,
    ) -> None:
        """A unit and its outputs, in one transaction (replacing an earlier attempt). A failed
        unit gets one ``error`` row per ``expected`` placement (``scene`` for copy-paste)."""
        if error is not None:
            outputs = [
                {"placement": name, "candidate": 0, "bucket": None, "path": "", "models": {}}
                for name in expected or ["scene"]
            ]
        status = "error" if error else "done"
        with self._conn:
            self._conn.execute(
                "DELETE FROM outputs WHERE product_id=? AND mode=?", (product.id, mode)
            )
            self._conn.executemany(
                "INSERT INTO outputs (product_id, mode, placement, candidate, bucket, path, "
                "status, error, seconds, models) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (product.id, mode, o["placement"], o["candidate"], o["bucket"], o["path"],
                     status, error, seconds / max(1, len(outputs)), json.dumps(o["models"]))
                    for o in outputs
                ],
            )  # fmt: skip
            self._conn.execute(
                "INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (product.id, mode, settings, "error" if error else "done", error, seconds,
                 str(product.image), time.time()),
            )  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        cur = self._conn.execute("SELECT * FROM outputs ORDER BY product_id, mode, placement")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]


def run_batch(
    engine,
    source: str | Path,
    out: str | Path,
    modes: Iterable[str] = ("copy-paste",),
    placements: list[str] | None = None,
    index: str | Path | None = None,
    k: int = 3,
    workers: int = 1,
    fmt: str = "png",
    progress: bool = True,
    on_unit: Callable[[Product, str], None] | None = None,
    engine_kind: str = "local",
    address: str | None = None,
    num_gpus: float = 0.0,
) -> BatchSummary:
    """Stage every product of ``source`` (folder or CSV) in every mode into ``out``.

    Args:
        engine: the :class:`~staging.StagingEngine` whose methods do the staging.
        modes: any of :data:`MODES`.
        placements: placement names or ``WxH`` for the generated modes (default ``square``).
        index: the catalog index copy-paste retrieves scenes from (needed for it).
        k: copy-paste candidates per product.
        workers: threads running units at once (one engine, models loaded once).
        fmt: ``png``, ``jpg`` or ``webp``.
        on_unit: called after each unit is recorded (progress hooks, tests).
        engine_kind: ``local`` (threads here) or ``ray``: a Ray Data pipeline on the cluster at
            ``address`` (None: a local one), ``workers`` actors each holding an engine made
            from ``engine.settings``, ``num_gpus`` each; the same files and manifest.
    """
    modes = [m.strip() for m in modes if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise StagingError(f"Unknown mode(s) {unknown or modes}: choose from {', '.join(MODES)}.")
    if "copy-paste" in modes and index is None:
        raise StagingError("copy-paste needs a catalog index: pass --index (staging index).")
    if k < 1 or workers < 1:
        raise StagingError("-k and --workers must be at least 1.")
    if engine_kind not in ("local", "ray"):
        raise StagingError(f"Unknown --engine {engine_kind!r}: local or ray.")
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("png", "jpg", "jpeg", "webp"):
        raise StagingError(f"Unsupported --format {fmt!r}: png, jpg or webp.")
    products = read_products(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StagingError(
            f"Another batch is writing to '{out}' (lock {out / LOCK}); wait for it, or use "
            "another output folder."
        ) from None
    job = BatchRun(out, placements, index, k, fmt)
    if engine_kind == "local":
        runner = threads
    else:
        from staging.batch_ray import ray_runner

        runner = ray_runner(address, num_gpus)
    try:
        return _run(engine, products, out, modes, job, workers, progress, on_unit, runner)
    finally:
        lock.release()


def threads(
    engine, job: BatchRun, todo: list[tuple[Product, str]], workers: int
) -> Iterator[Outcome]:
    """The local engine: ``workers`` threads sharing ``engine``, at most that many units in
    flight; outcomes in the order they finish."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future, tuple[Product, str]] = {}
        queue = iter(todo)
        for item in queue:
            pending[pool.submit(stage_unit, engine, job, *item)] = item
            if len(pending) >= workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                product, mode = pending.pop(future)
                try:
                    outputs, seconds = future.result()
                    yield product, mode, outputs, seconds, None
                except Exception as exc:  # noqa: BLE001 - one bad product must not stop it
                    yield product, mode, [], 0.0, failure_message(exc)
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(stage_unit, engine, job, *nxt)] = nxt


def _run(engine, products, out, modes, job, workers, progress, on_unit, runner):
    for stray in out.glob("*/.*.tmp"):  # a killed run's unfinished write (never a result)
        stray.unlink(missing_ok=True)
    manifest = Manifest(out / MANIFEST)
    summary = BatchSummary(out)
    started = time.perf_counter()
    settings = {
        "copy-paste": json.dumps({"k": job.k, "index": str(job.index), "format": job.fmt}),
        "vanilla": json.dumps({"placements": job.placements, "format": job.fmt}),
        "prompt": json.dumps({"placements": job.placements, "format": job.fmt}),
    }
    todo = []
    for product in products:
        for mode in modes:
            summary.units += 1
            if manifest.done(product.id, mode, settings[mode]):
                summary.skipped += 1
            else:
                todo.append((product, mode))
    bar = tqdm(total=len(todo), desc="batch", unit="unit", disable=not progress or not todo)
    try:
        # Only this thread writes the manifest, a unit's rows after all its files.
        for product, mode, outputs, seconds, error in runner(engine, job, todo, workers):
            if error is not None:
                expected = ["scene"] if mode == "copy-paste" else job.placements or ["square"]
                manifest.record(product, mode, settings[mode], [], 0.0, error, expected)
                summary.failed.append((product.id, mode, error))
            else:
                manifest.record(product, mode, settings[mode], outputs, seconds)
                summary.done += 1
                summary.outputs += len(outputs)
            bar.update(1)
            if on_unit is not None:
                on_unit(product, mode)
    finally:
        bar.close()
        manifest.close()
    summary.seconds = time.perf_counter() - started
    return summary
