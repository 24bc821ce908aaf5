"""Catalog CSV files: the one reader and the one path rule for every CSV the project reads.

The catalog index (``staging index --csv``), ``staging batch`` and the training dataset
(:func:`staging.batch.read_products`), uploads (:mod:`staging.catalog.uploads`) and the
retrieval evaluation (:mod:`staging.evaluate.retrieval`) all read CSV files that name image
files. They read them here, so that a CSV that works for one works for all:

* **Reading.** UTF-8, with or without a byte-order mark (spreadsheets write one); the first
  line is the header. A file that cannot be read or decoded is a :class:`StagingError` naming
  it, never a traceback.
* **Paths** (:func:`resolve_path`). A cell names a file by an absolute path (``~`` expanded) or
  by a path relative to **the CSV's own folder**, so a catalog folder and its CSV can be moved
  together. A caller that also knows a catalog folder (``staging index FOLDER --csv FILE``)
  passes it as a second folder: a relative path that is not beside the CSV is looked for
  there. The evaluation's ``--root`` replaces the CSV's folder. Surrounding spaces are ignored.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from staging.errors import StagingError
from staging.io import atomic_write

KNOWN_COLUMNS = ("id", "image", "title", "mask")
"""Columns the index stores in their own fields; every other column is kept as metadata."""


@dataclass
class CsvTable:
    """A CSV file's header and rows (each a dict by column; missing cells are ``None``)."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str | None]]

    @property
    def folder(self) -> Path:
        """The folder relative paths in the CSV start from."""
        return self.path.parent

    def require(self, *columns: str) -> None:
        """Raise a :class:`StagingError` naming the first of ``columns`` the header lacks."""
        for column in columns:
            if column not in self.columns:
                raise StagingError(
                    f"The CSV '{self.path}' has no {column!r} column "
                    f"(columns: {', '.join(self.columns)})."
                )


def read_csv(path: str | os.PathLike) -> CsvTable:
    """Read the CSV file at ``path`` (see the module docstring)."""
    path = Path(os.fspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StagingError(f"Cannot read the CSV '{path}': {exc}") from exc
    return CsvTable(path, columns, rows)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> Path:
    """Write ``rows`` under a ``columns`` header, atomically (cells a row lacks are empty)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), restval="")
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def resolve_path(cell: str, folders: Sequence[Path]) -> Path:
    """The file a CSV cell names: absolute (after ``~``) as it is; relative, under the first
    of ``folders`` that holds it, else under the first folder (the caller reports it)."""
    candidate = Path(cell.strip()).expanduser()
    if candidate.is_absolute() or not folders:
        return candidate
    for folder in folders:
        if (folder / candidate).is_file():
            return folder / candidate
    return folders[0] / candidate


def find_file(cell: str, folders: Sequence[Path]) -> Path | None:
    """:func:`resolve_path`, resolved to an absolute path, or None when there is no such file."""
    path = resolve_path(cell, folders)
    return path.resolve() if path.is_file() else None


# -- the index's CSV ---------------------------------------------------------------------------
@dataclass
class CatalogRow:
    """What the index keeps of one CSV row."""

    item_id: str | None
    category: str | None
    title: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    mask: Path | None = None  # a known product mask from the CSV's ``mask`` column

    def values(self) -> tuple[str | None, str | None, str | None, str]:
        """``(item_id, category, title, metadata JSON)`` as stored in the index's rows."""
        return self.item_id, self.category, self.title, dump_metadata(self.metadata)


NO_ROW_VALUES = (None, None, None, "{}")
"""What an image the CSV does not list stores in the CSV's fields."""


def row_values(row: CatalogRow | None) -> tuple[str | None, str | None, str | None, str]:
    return NO_ROW_VALUES if row is None else row.values()


def dump_metadata(metadata: dict) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def read_catalog_csv(
    csv_path: Path, folder: Path, category_column: str = "category"
) -> tuple[dict[Path, CatalogRow], list[tuple[str, str]]]:
    """Rows of an ``id,image,category,title,mask,...`` CSV by resolved image path, and the
    rows whose image or mask was not found (as ``(path, reason)``). Paths are relative to the
    CSV's folder, then to the catalog ``folder``."""
    table = read_csv(csv_path)
    table.require("image")
    if category_column not in table.columns and category_column != "category":
        raise StagingError(
            f"The CSV '{csv_path}' has no column {category_column!r} for categories "
            f"(columns: {', '.join(table.columns)})."
        )
    folders = (csv_path.parent, folder)
    known = {*KNOWN_COLUMNS, category_column}
    out: dict[Path, CatalogRow] = {}
    missing: list[tuple[str, str]] = []
    for row in table.rows:
        name = (row.get("image") or "").strip()
        if not name:
            continue
        path = find_file(name, folders)
        if path is None:
            missing.append((name, f"listed in {csv_path.name} but not found"))
            continue
        mask_name = _blank(row.get("mask"))
        mask = None
        if mask_name is not None:
            mask = find_file(mask_name, folders)
            if mask is None:
                missing.append((mask_name, f"mask listed in {csv_path.name} but not found"))
        out[path] = CatalogRow(
            item_id=_blank(row.get("id")),
            category=_blank(row.get(category_column)),
            title=_blank(row.get("title")),
            metadata={k: (v or "") for k, v in row.items() if k and k not in known},
            mask=mask,
        )
    return out, missing


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None
