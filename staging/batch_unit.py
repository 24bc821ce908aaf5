"""One unit of ``staging batch`` work: one product staged in one mode, its files written.

What both runners of a batch share, the threads of :mod:`staging.batch` and the Ray actors
of :mod:`staging.batch_ray`: the products read from a folder or CSV, the run's settings, and
:func:`stage_unit`. It imports neither runner, nor the engine (it is handed one).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from staging.catalog.csv import read_csv, resolve_path
from staging.errors import StagingError
from staging.io import list_images


@dataclass(frozen=True)
class Product:
    """One catalog row: its id, image and what the staging modes can use."""

    id: str
    image: Path
    category: str | None = None
    type: str | None = None
    size: str | None = None


def read_products(source: str | Path) -> list[Product]:
    """Products from a folder (every image under it; id = file name without extension) or a
    CSV with an ``image`` column (a path as :mod:`staging.catalog.csv` reads it: absolute, or
    relative to the CSV's folder) and optional ``id``, ``category``, ``type`` and ``size``."""
    source = Path(source)
    if source.is_dir():
        return [Product(_safe_id(p.stem), p) for p in list_images(source)]
    if not source.is_file():
        raise StagingError(f"No such folder or CSV file: '{source}'.")
    table = read_csv(source)
    if not table.rows or "image" not in table.columns:
        raise StagingError(f"'{source}' needs a header with an 'image' column.")
    products, seen = [], set()
    for number, row in enumerate(table.rows, start=2):
        image = resolve_path(row["image"] or "", [table.folder])
        product_id = _safe_id(row.get("id") or image.stem)
        if product_id in seen:
            raise StagingError(f"'{source}' line {number}: the id {product_id!r} is repeated.")
        seen.add(product_id)
        extra = {key: (row.get(key) or "").strip() or None for key in ("category", "type", "size")}
        products.append(Product(product_id, image, **extra))
    return products


def _safe_id(text: str) -> str:
    """An id usable in a file name (catalog ids like ``403.152.96`` stay as they are)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._") or "product"


@dataclass(frozen=True)
class BatchRun:
    """What every unit of one batch run shares: where and how to stage (picklable, for Ray)."""

    out: Path
    placements: list[str] | None
    index: str | Path | None
    k: int
    fmt: str


def stage_unit(engine, job: BatchRun, product: Product, mode: str) -> tuple[list[dict], float]:
    """Stage ``product`` in ``mode``, write its files under ``job.out`` (atomically) and
    return their manifest rows and the seconds it took. Raises what staging raises."""
    t0 = time.perf_counter()
    results = _stage(engine, product, mode, job.placements, job.index, job.k)
    outputs = []
    for number, staged in enumerate(results, start=1):
        placement = staged.source.get("placement")
        name = placement.get("name") if isinstance(placement, dict) else "scene"
        candidate = number if mode == "copy-paste" else 1
        stem = f"{product.id}.{name}" + (f".{candidate}" if mode == "copy-paste" else "")
        relative = Path(mode) / f"{stem}.{job.fmt}"
        staged.save(job.out / relative)
        outputs.append(
            {
                "placement": name,
                "candidate": candidate,
                "bucket": staged.source.get("bucket"),
                "path": str(relative),
                "models": staged.models,
            }
        )
    return outputs, time.perf_counter() - t0


def failure_message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, StagingError) else repr(exc)


Outcome = tuple[Product, str, list[dict], float, str | None]
"""A finished unit: product, mode, its outputs, seconds, and the error (None when done)."""


def _stage(engine, product: Product, mode: str, placements, index, k: int) -> list:
    if mode == "copy-paste":
        return engine.stage_copy_paste(
            product.image, k=k, index=index, product_type=product.type or product.category,
            product_size=product.size,
        )  # fmt: skip
    # Generated modes share one generation per aspect-ratio bucket across the placements
    # (inside one call) and keep it in the generation cache (across runs and workers).
    options = dict(category=product.category, placement=placements or "square", cache=True)
    if mode == "vanilla":
        return engine.stage_vanilla(product.image, **options)
    return engine.stage_prompt(product.image, **options)
