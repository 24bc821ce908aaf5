"""Bringing a catalog index up to date with a folder (and a CSV): resumable, one writer.

New and changed images are checked for staging, segmented (or given the CSV's mask) and
embedded by a pool of worker threads; images no longer present are dropped; unchanged ones
(same size and modification time, or same content hash) are skipped, but their CSV data is
refreshed when the CSV changed.

**Resume.** An update commits one SQLite transaction per batch of images (rows and vectors
together), after the batch's mask files are written (atomically). A run killed at any moment
therefore leaves whole batches only; the next run sees those files as unchanged and carries on
with the rest. Mask files written for a batch that never committed are orphans, removed at the
end of the next run.

**One writer.** A file lock in the index folder (across processes and threads) lets one update
run at a time; a second one says which process holds it, waits, and then only does what the
first left to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from staging.catalog.csv import CatalogRow, read_catalog_csv, row_values
from staging.catalog.db import SCHEMA_VERSION
from staging.errors import ImageLoadError, ModelNotAvailableError, StagingError

if TYPE_CHECKING:
    from staging.catalog.index import CatalogIndex
    from staging.embed.base import Embedder

MASKS_DIR = "masks"
WRITER_LOCK = ".writer.lock"  # one update at a time, across processes
WRITER_PID = ".writer.pid"  # who holds it, for the "waiting" message
BATCH_SIZE = 32
_log = logging.getLogger("staging.catalog.index")  # the name operators' log settings know


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


@contextlib.contextmanager
def writer_lock(folder: Path, progress: bool) -> Iterator[None]:
    """Hold the index's writer lock (a file lock: across processes and threads)."""
    lock = FileLock(str(folder / WRITER_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = (folder / WRITER_PID).read_text().strip()
        except OSError:
            holder = "another process"
        say(f"The index at '{folder}' is being updated by {holder}; waiting.", progress)
        lock.acquire()
    try:
        (folder / WRITER_PID).write_text(f"PID {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        lock.release()


def run_update(
    index: CatalogIndex,
    tools: IndexTools,
    folder: str | os.PathLike,
    csv: str | os.PathLike | None,
    progress: bool,
    category_column: str | None,
    batch_size: int,
    workers: int | None,
) -> UpdateReport:
    """:meth:`CatalogIndex.update` (see the module docstring), run under :func:`writer_lock`."""
    from tqdm import tqdm

    from staging.io import list_images

    t_start = time.perf_counter()
    folder = Path(os.fspath(folder)).expanduser()
    if not folder.exists():
        raise StagingError(f"No such catalog folder: '{folder}'.")
    model = tools.embedder
    _check_embedder(index, model)
    report = UpdateReport(index.path, model.name, int(model.dim))
    if tools.notice:
        say(tools.notice, progress)

    db = index.db
    csv_path, category_column = _csv_settings(index, csv, category_column)
    files = {p.resolve(): None for p in list_images(folder)}
    rows: dict[Path, CatalogRow] = {}
    if csv_path is not None:
        rows, missing = read_catalog_csv(csv_path, folder, category_column)
        report.failed.extend(missing)
        for path in rows:
            files.setdefault(path, None)  # CSV images outside the folder count too

    existing = db.existing()
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
            _queue_meta_update(old, csv_path, rows.get(path), meta_updates, report)
            continue
        todo.append((path, st))

    # Files whose stat changed but whose content did not only need their stat refreshed.
    still: list[tuple[Path, os.stat_result]] = []
    for path, st in todo:
        old = existing.get(str(path))
        if old is not None and sha256(path) == old["hash"]:
            report.unchanged += 1
            meta_updates.append(("stat", st.st_size, st.st_mtime_ns, old["id"]))
            _queue_meta_update(old, csv_path, rows.get(path), meta_updates, report)
        else:
            still.append((path, st))
    todo = still

    gone = [row["id"] for p, row in existing.items() if Path(p) not in files]
    with db.transaction() as cur:
        cur.set_meta("embedder", model.name)
        cur.set_meta("embedder_version", str(model.version))
        cur.set_meta("dim", str(model.dim))
        cur.set_meta("schema", str(SCHEMA_VERSION))
        if csv_path is not None:
            cur.set_meta("csv", str(csv_path))
            cur.set_meta("category_column", category_column)
        for update in meta_updates:
            if update[0] == "stat":
                cur.set_stat(update[3], update[1], update[2])
            else:
                cur.set_csv_values(update[-1], update[1:-1])
        if gone:
            cur.delete(gone)
        if gone or any(update[0] == "meta" for update in meta_updates):
            cur.bump_generation()  # rows' CSV data count too (CatalogScenes)
    report.removed = len(gone)

    t_proc = time.perf_counter()
    n_workers = workers or tools.threads or min(4, os.cpu_count() or 1)
    batched = _has_batched_embedding(model)
    masks_dir = index.path / MASKS_DIR
    masks_dir.mkdir(exist_ok=True)
    bar = tqdm(total=len(todo), desc="index", unit="img", disable=not progress or not todo)
    try:
        with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
            for start in range(0, len(todo), max(1, batch_size)):
                chunk = todo[start : start + max(1, batch_size)]
                results = list(
                    pool.map(
                        lambda item: _process(tools, *item, batched, _known_mask(rows, item[0])),
                        chunk,
                    )
                )
                if batched:
                    _embed_batch(model, results)
                _commit_batch(index, results, existing, rows, masks_dir, report)
                bar.update(len(chunk))
    finally:
        bar.close()
    report.processing_seconds = time.perf_counter() - t_proc

    _cleanup_masks(index)
    index.sync_vectors()  # bring vectors.faiss up to date now, not at the first search
    report.total = len(index)
    report.seconds = time.perf_counter() - t_start
    return report


def _check_embedder(index: CatalogIndex, model: Embedder) -> None:
    index.check_embedder(model.name)
    index.check_version(model)
    dim = index.dim
    if dim is not None and dim != model.dim:
        raise StagingError(
            f"The index at '{index.path}' holds {dim}-d vectors but embedder {model.name!r} "
            f"now makes {model.dim}-d ones; rebuild the index (staging index ... --rebuild)."
        )


def _csv_settings(
    index: CatalogIndex, csv_file: str | os.PathLike | None, category_column: str | None
) -> tuple[Path | None, str]:
    """The CSV and category column of this run: the ones given, else the previous run's."""
    if csv_file is not None:
        path = Path(os.fspath(csv_file)).expanduser().resolve()
        if not path.is_file():
            raise StagingError(f"No such CSV file: '{path}'.")
        return path, category_column or "category"
    stored = index.db.meta("csv")
    column = category_column or index.db.meta("category_column") or "category"
    if stored and Path(stored).is_file():
        return Path(stored), column
    return None, column


def _queue_meta_update(
    old: dict, csv_path: Path | None, row: CatalogRow | None, queue: list, report: UpdateReport
) -> None:
    """Refresh an unchanged image's CSV data when the CSV changed (no re-embedding)."""
    if csv_path is None:
        return  # no CSV at all: keep what the rows have
    values = row_values(row)
    if values != (old["item_id"], old["category"], old["title"], old["metadata"]):
        queue.append(("meta", *values, old["id"]))
        report.metadata_updated += 1


def _commit_batch(
    index: CatalogIndex,
    results: list[_Processed],
    existing: dict[str, dict],
    rows: dict[Path, CatalogRow],
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
    with index.db.transaction() as cur:
        for item in good:
            old = existing.get(str(item.path))
            if old is not None:
                cur.delete([old["id"]])
                report.changed += 1
            else:
                report.added += 1
            item_id, category, title, metadata = row_values(rows.get(item.path))
            cur.insert(
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
                )
            )
        if good:
            cur.bump_generation()


def _cleanup_masks(index: CatalogIndex) -> None:
    """Remove masks no row refers to (dropped images, batches killed before commit)."""
    masks_dir = index.path / MASKS_DIR
    if not masks_dir.is_dir():
        return
    used = index.db.hashes()
    for entry in masks_dir.iterdir():
        stem = entry.name.split(".")[0] if not entry.name.startswith(".") else ""
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)  # a write killed halfway
        elif entry.suffix == ".png" and stem not in used:
            entry.unlink(missing_ok=True)


def say(message: str, progress: bool) -> None:
    """Tell the person running the update (beside the progress bar), else the log."""
    if progress:
        print(message, file=sys.stderr, flush=True)
    else:
        _log.warning(message)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_batched_embedding(model: Embedder) -> bool:
    """Does the embedder batch for real (ONNX/torch), or just loop over ``_embed_one``?"""
    from staging.embed.base import Embedder

    return type(model).embed_batch is not Embedder.embed_batch


def _known_mask(rows: dict[Path, CatalogRow], path: Path) -> Path | None:
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
        item.hash = sha256(path)
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
