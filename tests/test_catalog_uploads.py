"""A catalog brought by upload: files or a zip and a CSV, within limits, bad files listed."""

from __future__ import annotations

import zipfile

import pytest

from staging import StagingEngine, StagingError
from staging.catalog.uploads import gather_uploads
from tests.helpers.rooms import product_shot
from tests.helpers.rooms import upload_rooms as _rooms


def test_uploads_are_gathered_within_limits_and_refusals_listed(tmp_path):
    src = tmp_path / "src"
    files = _rooms(src)
    (src / "notes.txt").write_text("hello")
    with zipfile.ZipFile(src / "more.zip", "w") as archive:
        archive.write(src / "room0.png", "../../outside.jpg")  # no way out of the folder
        archive.writestr("big.png", b"x" * 400_000)
        archive.writestr("second.csv", "image\nroom0.png\n")
    out = tmp_path / "index" / "images"
    gathered = gather_uploads(
        [*files, src / "notes.txt", src / "more.zip"], out, max_file_bytes=200_000
    )
    names = sorted(p.name for p in gathered.images)
    assert names == ["outside.jpg", "room0.png", "room1.png", "room2.png"]
    assert not (tmp_path / "outside.jpg").exists() and (out / "outside.jpg").is_file()
    refused = dict(gathered.rejected)
    assert refused["notes.txt"].startswith("not an image") and refused["big.png"] == "over 195 KB"
    assert "second CSV" in refused["second.csv"]
    # The masks the CSV names leave the images folder; its cells name what was uploaded.
    assert sorted(p.name for p in (out.parent / "masks").iterdir())[0] == "room0-mask.png"
    assert not list(out.glob("*-mask.png")) and gathered.csv == out.parent / "catalog.csv"
    assert "room0.png,masks/room0-mask.png,Chair" in gathered.csv.read_text()
    with pytest.raises(StagingError, match="no image to index"):
        gather_uploads([src / "notes.txt"], tmp_path / "empty")


def test_an_uploaded_catalog_is_indexed_staged_into_and_deleted(tmp_path):
    engine = StagingEngine(device="cpu", cache_dir=tmp_path / "cache")
    src = tmp_path / "src"
    files = _rooms(src)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    index = tmp_path / "cache" / "indexes" / "my-rooms"
    report = engine.index_uploads(index, [*files, src / "broken.jpg"], progress=False)
    assert report.added == 3 and [name for name, _ in report.failed] == ["broken.jpg"]
    assert not (index / "images" / "broken.jpg").exists()
    stats = engine.index(index).stats()
    assert stats["staged"] == 3  # the CSV's masks: no segmentation model needed
    results = engine.stage_copy_paste(product_shot()[0], k=3, index=index, product_type="Chair")
    assert sorted(r.source["id"] for r in results) == ["room0", "room1", "room2"]
    # A second upload adds to the index and keeps the first one's rows.
    more = _rooms(tmp_path / "more", count=1, seed=90)
    (tmp_path / "more" / "room0.png").rename(tmp_path / "more" / "room9.png")
    (tmp_path / "more" / "rooms.csv").write_text(
        "image,mask,type\nroom9.png,room0-mask.png,Chair\n"
    )
    again = engine.index_uploads(
        index, [tmp_path / "more" / "room9.png", *more[1:]], progress=False
    )
    assert again.added == 1 and engine.index(index).stats()["staged"] == 4
    engine.delete_index(index)
    assert not index.exists()
    with pytest.raises(StagingError, match="No catalog index"):
        engine.delete_index(index)
