"""The one catalog CSV reader and its path rule, as the index, batch and evaluation use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.batch import read_products
from staging.catalog.csv import find_file, read_catalog_csv, read_csv, resolve_path, write_csv
from staging.errors import StagingError
from staging.evaluate.retrieval import read_labelled_csv


def _files(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_relative_paths_start_from_the_csv_folder_then_the_callers_folder(tmp_path):
    csv_dir, catalog = tmp_path / "meta", tmp_path / "photos"
    _files(csv_dir, "a.png", "sub/b.png")
    _files(catalog, "c.png", "a.png")
    absolute = tmp_path / "elsewhere" / "d.png"
    _files(absolute.parent, "d.png")
    folders = [csv_dir, catalog]
    assert resolve_path("a.png", folders) == csv_dir / "a.png"  # beside the CSV first
    assert resolve_path(" sub/b.png ", folders) == csv_dir / "sub" / "b.png"  # spaces ignored
    assert resolve_path("c.png", folders) == catalog / "c.png"  # then the catalog folder
    assert resolve_path(str(absolute), folders) == absolute  # absolute: as it is
    assert resolve_path("nope.png", folders) == csv_dir / "nope.png"  # none: the CSV's folder
    assert find_file("nope.png", folders) is None
    assert find_file("c.png", folders) == (catalog / "c.png").resolve()
    assert resolve_path("~/x.png", folders) == Path.home() / "x.png"


def test_index_batch_and_evaluation_read_one_csv_alike(tmp_path, monkeypatch):
    folder = tmp_path / "catalog"
    _files(folder, "img/p0.png", "img/p1.png", "img/p2.png")
    text = "id,image,type,mask\nA,img/p0.png,chair,\nB,img/p1.png,chair,\nC,img/p2.png,lamp,\n"
    csv_path = folder / "catalog.csv"
    csv_path.write_bytes("\ufeff".encode() + text.encode())  # a spreadsheet's byte-order mark
    monkeypatch.chdir(tmp_path)  # nothing depends on the working folder
    expected = [folder / "img" / f"p{i}.png" for i in range(3)]

    index_rows, missing = read_catalog_csv(csv_path, tmp_path / "unrelated")
    assert sorted(index_rows) == [p.resolve() for p in expected] and missing == []
    assert [p.image for p in read_products(csv_path)] == expected
    labelled = read_labelled_csv(csv_path, label="type", min_count=1)
    assert [path for path, _ in labelled] == expected


def test_unreadable_csvs_are_errors_that_name_the_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"image\n\xff\xfe\x00broken\n")
    with pytest.raises(StagingError, match="Cannot read the CSV"):
        read_csv(bad)
    with pytest.raises(StagingError, match="no 'image' column"):
        read_catalog_csv(_written(tmp_path / "x.csv", "path\na.png\n"), tmp_path)


def test_write_csv_round_trips_and_fills_missing_cells(tmp_path):
    target = write_csv(tmp_path / "out.csv", ["image", "type"], [{"image": "a.png"}])
    table = read_csv(target)
    assert table.columns == ["image", "type"] and table.rows == [{"image": "a.png", "type": ""}]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
