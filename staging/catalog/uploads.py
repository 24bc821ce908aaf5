"""A catalog brought by upload: room photos, a zip of them and an optional CSV, gathered into
the index's own folder within limits, every file that cannot be used listed with its reason.

A designer's rooms come from a browser, not from a folder on the server. The files are copied
(never linked) into ``<index>/images/`` under their own base names, so the index owns what it
was built from and deleting the index deletes them. Nothing a client names can reach outside
that folder: names are reduced to their base name and zip members to theirs (no zip-slip).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from staging.catalog.csv import read_csv, write_csv
from staging.errors import StagingError
from staging.io import IMAGE_EXTENSIONS

MAX_FILES = 500
"""Images one upload may add: a catalog of rooms, not a whole photo library."""
MAX_FILE_BYTES = 25 * 2**20
"""Per image (and per CSV): a 6000 px JPEG is ~10 MB."""
MAX_TOTAL_BYTES = 1 * 2**30
"""All the upload's files together, zip members unpacked."""


@dataclass
class Gathered:
    """What :func:`gather_uploads` kept and what it refused."""

    images: list[Path] = field(default_factory=list)
    csv: Path | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)


def gather_uploads(
    files: list[str | os.PathLike],
    folder: str | os.PathLike,
    max_files: int = MAX_FILES,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Gathered:
    """Copy the uploaded images (and the images of uploaded zips) and at most one CSV into
    ``folder``. Files over the limits, of other kinds, or named twice are listed in
    ``rejected``, not fatal; the images' pixels are checked when they are indexed."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    gathered, total = Gathered(), 0

    def take(name: str, size: int, write) -> None:
        nonlocal total
        base = Path(name.replace("\\", "/")).name
        suffix = Path(base).suffix.lower()
        if not base or base.startswith("."):
            return
        if suffix not in IMAGE_EXTENSIONS and suffix != ".csv":
            gathered.rejected.append((base, "not an image, a zip or a CSV"))
        elif size > max_file_bytes:
            gathered.rejected.append((base, f"over {_size(max_file_bytes)}"))
        elif total + size > max_total_bytes:
            gathered.rejected.append((base, f"the upload is over {_size(max_total_bytes)}"))
        elif suffix == ".csv":
            if gathered.csv is not None:
                gathered.rejected.append((base, "a second CSV (one describes the upload)"))
            else:
                gathered.csv = out / base
                write(gathered.csv)
                total += size
        elif len(gathered.images) >= max_files:
            gathered.rejected.append((base, f"over {max_files} images"))
        elif out / base in gathered.images:
            gathered.rejected.append((base, "the same name twice"))
        else:
            write(out / base)
            gathered.images.append(out / base)
            total += size

    for file in files:
        path = Path(file)
        if not path.is_file():
            gathered.rejected.append((path.name, "not found"))
        elif path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    for member in archive.infolist():
                        if member.is_dir():
                            continue

                        def unpack(target: Path, member=member, archive=archive) -> None:
                            with archive.open(member) as src, open(target, "wb") as dst:
                                shutil.copyfileobj(src, dst)

                        take(member.filename, member.file_size, unpack)
            except (zipfile.BadZipFile, OSError) as exc:
                gathered.rejected.append((path.name, f"not a readable zip ({exc})"))
        else:
            take(path.name, path.stat().st_size, lambda target, p=path: shutil.copyfile(p, target))
    if gathered.csv is not None:
        _settle_csv(gathered, out)
    if not gathered.images:
        reasons = "; ".join(f"{name}: {why}" for name, why in gathered.rejected[:3])
        raise StagingError(
            "The upload holds no image to index"
            + (f" ({reasons})." if reasons else ".")
            + " Upload room photos (JPEG, PNG, WebP), or a zip of them, and optionally a CSV."
        )
    return gathered


def _settle_csv(gathered: Gathered, images: Path) -> None:
    """Make the uploaded CSV name the uploaded files: its ``image`` and ``mask`` cells become
    base names (a browser uploads files, not folders), and the masks it names move out of the
    images folder into ``../masks`` (so they are not indexed as catalog photos)."""
    path = gathered.csv
    try:
        table = read_csv(path)
    except StagingError as exc:  # named by the cause: no server path in what users see
        gathered.rejected.append((path.name, f"not a readable CSV ({exc.__cause__ or exc})"))
        path.unlink(missing_ok=True)
        gathered.csv = None
        return
    rows, columns = table.rows, table.columns
    masks = images.parent / "masks"
    for row in rows:
        if row.get("image"):
            row["image"] = Path(row["image"].replace("\\", "/")).name
        name = Path((row.get("mask") or "").replace("\\", "/")).name
        if name and (images / name).is_file():
            masks.mkdir(exist_ok=True)
            os.replace(images / name, masks / name)
            gathered.images = [p for p in gathered.images if p.name != name]
        if name and (masks / name).is_file():
            row["mask"] = f"masks/{name}"  # relative to the CSV, beside the images folder
    # One CSV for the index, beside (not among) its images: an earlier upload's rows stay,
    # unless this one describes the same image again.
    target = images.parent / "catalog.csv"
    if target.is_file():
        earlier = read_csv(target)
        old_columns, old_rows = earlier.columns, earlier.rows
        described = {row.get("image") for row in rows}
        rows = [row for row in old_rows if row.get("image") not in described] + rows
        columns += [c for c in old_columns if c not in columns]
    write_csv(target, columns, rows)
    path.unlink()
    gathered.csv = target


def _size(n: int) -> str:
    return f"{n // 2**20} MB" if n >= 2**20 else f"{n // 2**10} KB"
