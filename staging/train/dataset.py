"""``staging dataset``: training records from a catalog's staged images.

For every staged image: the product's mask (the default real segmenter), the product on white
at the same place (pix2pix's input, seed 000 §5.2), the staged image itself (the target), a
caption, and ``holes`` free-form hole masks (Yu et al. 2019; EdgeConnect's training masks).
Written as::

    DIR/target/<id>.png      the staged image, at most ``max_side`` px
    DIR/input/<id>.png       the segmented product on white, same size
    DIR/mask/<id>.png        the product's mask (0/255)
    DIR/holes/<id>-<k>.png   free-form holes (0/255), seeded by the id: the same every run
    DIR/metadata.jsonl       one JSON line per record, written last

``metadata.jsonl`` follows the Hugging Face ``imagefolder`` convention (``file_name`` is the
target, ``text`` its caption), so the folder also loads with ``datasets.load_dataset``. A
record's files are complete before its line is appended, and a torn last line (a kill
mid-write) is dropped on the next run: re-running resumes and never duplicates.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.errors import StagingError
from staging.io import at_most, save_image
from staging.train.masks import free_form_mask

if TYPE_CHECKING:
    from staging.models import ModelStore

METADATA = "metadata.jsonl"


@dataclass(frozen=True)
class Record:
    """One catalog image to turn into a training record; ``text`` is the caption used when no
    captioning model is given (the catalog's title or category)."""

    id: str
    image: Path
    text: str = ""


@dataclass
class DatasetReport:
    out: Path
    records: int = 0
    added: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out)}


def done_ids(out: Path) -> set[str]:
    """The ids already in ``out/metadata.jsonl``; a torn last line is cut off the file."""
    path = out / METADATA
    if not path.is_file():
        return set()
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(len(whole))
    return {json.loads(line)["id"] for line in whole.splitlines() if line.strip()}


def read_metadata(folder: str | Path) -> list[dict[str, Any]]:
    """The records of a dataset folder, paths made absolute."""
    folder = Path(folder)
    path = folder / METADATA
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a dataset (no {METADATA}): run staging dataset")
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            for key in ("file_name", "input", "mask"):
                row[key] = str(folder / row[key])
            row["holes"] = [str(folder / h) for h in row["holes"]]
            records.append(row)
    return records


def _seed(record_id: str) -> int:
    return int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:8], "little")


def build_dataset(
    records: Iterable[Record],
    out: str | Path,
    load: Callable[[Path], np.ndarray],
    segment: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    caption: Callable[[np.ndarray], str] | None = None,
    holes: int = 4,
    max_side: int = 1024,
    on_record: Callable[[str], None] | None = None,
) -> DatasetReport:
    """Write a training record for each of ``records`` into ``out`` (see the module doc).

    ``load(path)``: the RGB image; ``segment(rgb)``: ``(mask, alpha)`` of its product;
    ``caption(rgb)``: a caption, else each record's ``text``. A record that cannot be read or
    has no product is listed in ``failed`` and the others go on.
    """
    out = Path(out)
    for folder in ("target", "input", "mask", "holes"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    report = DatasetReport(out)
    started = time.perf_counter()
    done = done_ids(out)
    with open(out / METADATA, "a", encoding="utf-8") as metadata:
        for record in records:
            report.records += 1
            if record.id in done:
                report.skipped += 1
            else:
                try:
                    row = _write_record(record, out, load, segment, caption, holes, max_side)
                except Exception as exc:  # noqa: BLE001 - one bad image must not stop the run
                    report.failed.append((record.id, str(exc) or type(exc).__name__))
                else:
                    metadata.write(json.dumps(row) + "\n")
                    metadata.flush()
                    os.fsync(metadata.fileno())
                    done.add(record.id)
                    report.added += 1
            if on_record is not None:
                on_record(record.id)
    report.seconds = time.perf_counter() - started
    return report


def _write_record(record, out, load, segment, caption, holes, max_side) -> dict[str, Any]:
    rgb = at_most(load(record.image), max_side)
    mask, alpha = segment(rgb)
    if not mask.any():
        raise ValueError("no product found in the image")
    white = np.float32(255.0)
    on_white = rgb.astype(np.float32) * alpha[..., None] + white * (1 - alpha[..., None])
    rng = np.random.default_rng(_seed(record.id))
    names = {
        "file_name": f"target/{record.id}.png",
        "input": f"input/{record.id}.png",
        "mask": f"mask/{record.id}.png",
    }
    hole_names = [f"holes/{record.id}-{k}.png" for k in range(holes)]
    # Files first, each written whole (save_image renames a finished file into place).
    save_image(out / names["file_name"], rgb)
    save_image(out / names["input"], np.clip(np.rint(on_white), 0, 255).astype(np.uint8))
    save_image(out / names["mask"], mask.astype(np.uint8) * 255)
    for name in hole_names:
        hole = free_form_mask(*rgb.shape[:2], rng)
        save_image(out / name, hole.astype(np.uint8) * 255)
    text = caption(rgb) if caption is not None else record.text
    return {"id": record.id, **names, "holes": hole_names, "text": text,
            "source": str(record.image), "width": rgb.shape[1], "height": rgb.shape[0]}  # fmt: skip


def catalog_dataset(
    source: str | os.PathLike,
    out: str | os.PathLike,
    load: Callable[[Path], np.ndarray],
    is_staged: Callable[[np.ndarray], Any],
    segment: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    store: ModelStore,
    device: str,
    holes: int = 4,
    max_side: int = 1024,
    caption_column: str | None = None,
    staged_only: bool = True,
    captions: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> DatasetReport:
    """Training records from a catalog (a folder, or a CSV with an ``image`` column) for
    ``staging train``, written by :func:`build_dataset`.

    ``load(path)`` reads an image, ``is_staged(rgb)`` says whether it is a staged scene and
    ``segment(rgb)`` gives its product's ``(mask, alpha)`` (the default segmenter, cached as
    every mask is). Captions (``captions``): ``blip`` from the BLIP model in ``store``
    (``staging models pull blip-captioning``; run on ``device``), ``catalog`` from
    ``caption_column`` of the CSV, else its ``type`` or ``category``; ``auto`` is BLIP when it
    is on disk, else the catalog's. With ``staged_only``, images of a product on a plain
    background are listed as failed, not trained on. ``progress(done, total)``.
    """
    if captions not in ("auto", "blip", "catalog"):
        raise StagingError(f"captions must be auto, blip or catalog, not {captions!r}.")
    from staging.batch_unit import read_products
    from staging.catalog.csv import read_csv

    products = read_products(source)
    texts = {p.id: p.type or p.category or "" for p in products}
    if caption_column:
        rows = read_csv(source).rows
        if rows and caption_column not in rows[0]:
            raise StagingError(f"'{source}' has no column {caption_column!r}.")
        column = [(r.get(caption_column) or "").strip() for r in rows]
        texts = {p.id: text for p, text in zip(products, column, strict=True)}

    def staged(path: Path) -> np.ndarray:
        rgb = load(path)
        if staged_only and not is_staged(rgb):
            raise StagingError("not a staged image (a product on a plain background)")
        return rgb

    done = 0

    def step(_: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(products))

    records = [Record(p.id, p.image, texts[p.id]) for p in products]
    caption = None
    if captions == "blip" or (captions == "auto" and store.find("blip-captioning")):
        from staging.train.caption import BlipCaptioner

        caption = BlipCaptioner(store.path("blip-captioning"), device)
    return build_dataset(records, out, staged, segment, caption, holes, max_side, step)
