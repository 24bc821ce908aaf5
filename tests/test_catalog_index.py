"""The catalog index (``staging index`` / ``staging search``): build, search, filters,
incremental updates, resume after a kill, and the CLI. Images are drawn here, no data needed."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from staging.catalog import CatalogIndex
from staging.catalog.index import DB_NAME, FAISS_NAME, MASKS_DIR
from staging.cli import app
from staging.engine import StagingEngine
from staging.errors import StagingError
from staging.evaluate.synth import compose_catalog_shot, procedural_object
from staging.io import save_image, save_mask

runner = CliRunner()
SIZE = 176
KINDS = ("chair", "lamp", "box", "plant", "ring")


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A busy, room-like background: coloured blocks and texture."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = rng.integers(60, 200, 3)
    for _ in range(25):
        x0, y0 = (int(v) for v in rng.integers(0, SIZE, 2))
        w, h = (int(v) for v in rng.integers(10, 80, 2))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), colour, -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def _staged_shot(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A room-like scene with a product in it, and the product's mask."""
    rgb, alpha = procedural_object(kind, rng, size=128)
    side = 110
    a = cv2.resize(alpha, (side, side))[..., None]
    obj = cv2.resize(rgb, (side, side)).astype(np.float32)
    img = _scene(rng)
    y, x = 40, 33
    patch = img[y : y + side, x : x + side].astype(np.float32)
    img[y : y + side, x : x + side] = (patch * (1 - a) + obj * a).astype(np.uint8)
    mask = np.zeros(img.shape[:2], bool)
    mask[y : y + side, x : x + side] = a[..., 0] >= 0.5
    return img, mask


def _catalog_shot(kind: str, rng: np.random.Generator) -> np.ndarray:
    rgb, alpha = procedural_object(kind, rng, size=128)
    shot, _ = compose_catalog_shot(rgb, alpha, rng, size=SIZE, style={"jpeg": 0})
    return shot


@pytest.fixture
def catalog(tmp_path):
    """12 images (10 plain-background shots, 2 staged scenes) and a CSV with metadata; the
    scenes' product masks are in the CSV (segmenting a scene needs a pretrained model)."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "catalog"
    rows = []
    for i in range(12):
        kind = KINDS[i % len(KINDS)]
        staged = i >= 10
        mask = ""
        if staged:
            image, scene_mask = _staged_shot(kind, rng)
            mask = f"../scene-masks/p{i:02d}.png"
            save_mask(folder / mask, scene_mask)
        else:
            image = _catalog_shot(kind, rng)
        sub = "scenes" if staged else "shots"
        save_image(folder / sub / f"p{i:02d}.png", image)
        rows.append(
            {
                "id": f"SKU-{i:02d}",
                "image": f"{sub}/p{i:02d}.png",
                "category": kind,
                "title": f"{kind} number {i}",
                "price": str(10 + i),
                "mask": mask,
            }
        )
    csv_path = folder / "catalog.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder, csv_path, rows


@pytest.fixture(scope="module")
def engine():
    return StagingEngine(device="cpu")


def _near_duplicate(path, out):
    """The same photo, slightly rescaled and brightened: what a re-upload looks like."""
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (SIZE - 16, SIZE - 16), interpolation=cv2.INTER_AREA)
    image = np.clip(image.astype(np.int16) + 4, 0, 255).astype(np.uint8)
    save_image(out, image, quality=92)
    return out


def _consistent(index_dir) -> int:
    """Assert the SQLite rows, the faiss file and the masks agree; return the item count."""
    import faiss

    db = sqlite3.connect(index_dir / DB_NAME)
    ids = sorted(r[0] for r in db.execute("SELECT id FROM items"))
    hashes = {r[0] for r in db.execute("SELECT hash FROM items")}
    db.close()
    stored = faiss.read_index(str(index_dir / FAISS_NAME))
    assert sorted(faiss.vector_to_array(stored.id_map).tolist()) == ids
    masks = {p.stem for p in (index_dir / MASKS_DIR).glob("*.png")}
    assert masks == hashes
    return len(ids)


def test_build_and_search_near_duplicate(tmp_path, catalog, engine):
    folder, csv_path, _ = catalog
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    report = engine.update_index(index, folder, csv=csv_path, progress=False)
    assert (report.added, report.failed, report.total) == (12, [], 12)
    assert report.embedder == "handcrafted" and report.images_per_second > 0
    assert len(index) == 12 and _consistent(tmp_path / "idx") == 12

    query = _near_duplicate(folder / "shots" / "p03.png", tmp_path / "query.jpg")
    hits = engine.search(query, k=3, index=tmp_path / "idx", staged_only=False)
    assert [h.id for h in hits][0] == "SKU-03"
    top = hits[0]
    assert top.score > hits[1].score
    assert top.category == "plant" and top.title == "plant number 3" and not top.staged
    assert top.metadata["price"] == "13" and top.mask.is_file()
    assert top.path == (folder / "shots" / "p03.png").resolve()


def test_staged_flag_and_filters(tmp_path, catalog, engine):
    folder, csv_path, _ = catalog
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    engine.update_index(index, folder, csv=csv_path, progress=False)
    assert index.stats()["staged"] == 2  # the two scenes, not the studio shots
    vector = engine.embed(folder / "shots" / "p00.png")

    staged = index.search(vector, k=5, staged_only=True)
    assert {h.id for h in staged} == {"SKU-10", "SKU-11"}  # only 2 match: fewer than k
    lamps = index.search(vector, k=5, staged_only=False, category="LAMP")
    assert {h.id for h in lamps} == {"SKU-01", "SKU-06", "SKU-11"}
    assert [h.id for h in index.search(vector, k=5, category="lamp")] == ["SKU-11"]
    assert index.search(vector, k=5, category="sofa") == []
    # The HNSW path with a filter is exact on small subsets, so it agrees.
    assert [h.id for h in index.search(vector, k=5, category="lamp", index_type="hnsw")] == [
        "SKU-11"
    ]


def test_hnsw_matches_exact_top_hit(tmp_path, catalog, engine):
    folder, csv_path, _ = catalog
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    engine.update_index(index, folder, csv=csv_path, progress=False)
    for i in (0, 4, 10):
        sub = "scenes" if i >= 10 else "shots"
        mask = None
        if i >= 10:  # a scene's query uses its known mask (no pretrained segmenter in tests)
            mask = cv2.imread(str(folder.parent / "scene-masks" / f"p{i:02d}.png"), 0) > 127
        vector = engine.embed(folder / sub / f"p{i:02d}.png", mask=mask)
        exact = index.search(vector, k=3, staged_only=False, index_type="exact")
        hnsw = index.search(vector, k=3, staged_only=False, index_type="hnsw")
        assert exact[0].id == hnsw[0].id == f"SKU-{i:02d}"
        assert hnsw[0].score == pytest.approx(exact[0].score, abs=1e-5)
    hnsw_index = CatalogIndex.open(tmp_path / "idx", index_type="hnsw")
    assert hnsw_index.search(vector, k=1, staged_only=False)[0].id == "SKU-10"


def test_rerun_adds_changes_and_drops(tmp_path, catalog, engine):
    folder, csv_path, rows = catalog
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    engine.update_index(index, folder, csv=csv_path, progress=False)
    old_row = index.search(engine.embed(folder / "shots" / "p02.png"), 1, False)[0].row

    rng = np.random.default_rng(99)
    save_image(folder / "shots" / "new.png", _catalog_shot("lamp", rng))  # not in the CSV
    save_image(folder / "shots" / "p02.png", _catalog_shot("chair", rng))  # new content
    (folder / "shots" / "p04.png").unlink()
    rows[5]["title"] = "renamed"  # CSV-only change: no re-embedding
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    report = engine.update_index(CatalogIndex.open(tmp_path / "idx"), folder, progress=False)
    # p04 is still listed in the CSV (which is reused) but gone: dropped and reported.
    assert (report.added, report.changed, report.removed) == (1, 1, 1)
    assert report.metadata_updated == 1 and report.unchanged == 10
    assert [p for p, _ in report.failed] == ["shots/p04.png"]
    assert len(index) == 12 and _consistent(tmp_path / "idx") == 12

    changed = index.search(engine.embed(folder / "shots" / "p02.png"), 1, False)[0]
    assert changed.id == "SKU-02" and changed.row != old_row  # re-embedded: a new row
    new = index.search(engine.embed(folder / "shots" / "new.png"), 1, False)[0]
    assert new.id == "new" and new.category is None
    everything = index.search(engine.embed(folder / "shots" / "p00.png"), 20, False)
    assert len(everything) == 12 and "SKU-04" not in {h.id for h in everything}
    renamed = index.search(engine.embed(folder / "shots" / "p05.png"), 1, False)[0]
    assert renamed.title == "renamed"

    again = engine.update_index(index, folder, progress=False)
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, 12)


class SimulatedKill(BaseException):
    """Like SIGKILL or Ctrl-C: not an error the indexer may swallow."""


def test_killed_run_resumes_to_a_complete_index(tmp_path, catalog, engine, monkeypatch):
    folder, csv_path, _ = catalog
    model = engine.embedder()
    real_embed = model.embed
    calls = {"n": 0}

    def dying_embed(image, mask=None):
        calls["n"] += 1
        if calls["n"] > 6:
            raise SimulatedKill
        return real_embed(image, mask)

    monkeypatch.setattr(model, "embed", dying_embed)
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    with pytest.raises(SimulatedKill):
        engine.update_index(index, folder, csv=csv_path, progress=False, batch_size=4, workers=1)
    monkeypatch.undo()
    assert len(index) == 4  # the first batch was committed, the half-done second was not
    (tmp_path / "idx" / FAISS_NAME).write_bytes(b"half a file")  # and the faiss file is junk

    resumed = CatalogIndex.open(tmp_path / "idx")  # a new process
    report = engine.update_index(resumed, folder, progress=False)  # the CSV is remembered
    assert (report.added, report.unchanged, report.failed) == (8, 4, [])
    assert _consistent(tmp_path / "idx") == 12
    hit = resumed.search(engine.embed(folder / "shots" / "p07.png"), 1, staged_only=False)[0]
    assert hit.id == "SKU-07" and hit.title == "box number 7"


def test_faiss_file_is_rebuilt_from_sqlite(tmp_path, catalog, engine):
    folder, csv_path, _ = catalog
    engine.update_index(tmp_path / "idx", folder, csv=csv_path, progress=False)
    (tmp_path / "idx" / FAISS_NAME).unlink()
    index = CatalogIndex.open(tmp_path / "idx")
    vector = engine.embed(folder / "shots" / "p01.png")
    assert index.search(vector, 1, staged_only=False)[0].id == "SKU-01"
    assert _consistent(tmp_path / "idx") == 12


def test_embedder_mismatch_is_a_clear_error(tmp_path, catalog, engine):
    folder, csv_path, _ = catalog
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    engine.update_index(index, folder, csv=csv_path, progress=False)
    expected = "was built with 'handcrafted'; pass --embedder handcrafted or rebuild"
    with pytest.raises(StagingError, match=expected):
        engine.update_index(index, folder, embedder="mobilenet_v2", progress=False)
    with pytest.raises(StagingError, match=expected):
        engine.search(folder / "shots" / "p00.png", index=index, embedder="clip")
    with pytest.raises(StagingError, match="No catalog index"):
        CatalogIndex.open(tmp_path / "nothing")


def test_corrupt_image_is_skipped_and_reported(tmp_path, catalog, engine):
    folder, csv_path, _ = catalog
    (folder / "shots" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    report = engine.update_index(index, folder, csv=csv_path, progress=False)
    assert report.added == 12 and len(report.failed) == 1
    path, reason = report.failed[0]
    assert path.endswith("broken.jpg") and "Cannot read" in reason
    assert _consistent(tmp_path / "idx") == 12


def test_cli_index_search_eval_and_bench(tmp_path, catalog):
    folder, csv_path, rows = catalog
    out = tmp_path / "idx"
    result = runner.invoke(app, ["index", str(folder), "--out", str(out), "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    assert "12 added" in result.output and "images/s" in result.output

    query = _near_duplicate(folder / "shots" / "p03.png", tmp_path / "q.jpg")
    result = runner.invoke(app, ["search", str(query), "--index", str(out), "-k", "3", "--all"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[1]
    assert "SKU-03" in first and "plant" in first

    result = runner.invoke(app, ["search", str(query), "--index", str(out), "--json"])
    hits = json.loads(result.output)
    assert {h["id"] for h in hits} == {"SKU-10", "SKU-11"} and all(h["staged"] for h in hits)

    result = runner.invoke(
        app, ["search", str(query), "--index", str(out), "--embedder", "mobilenet_v2"]
    )
    assert result.exit_code != 0 and "was built with 'handcrafted'" in str(result.exception)

    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "type"])
        for row in rows:
            if row["category"] in ("chair", "lamp", "box"):
                writer.writerow([row["image"], row["category"]])
    result = runner.invoke(
        app,
        ["eval", "retrieval", "--csv", str(labels), "--root", str(folder)]
        + ["--min-count", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["queries"] == 8 and 0.0 <= report["P@1"] <= 1.0 and "R@5" in report

    result = runner.invoke(
        app,
        ["bench", "retrieval", "--n", "3000", "--dim", "32", "--queries", "30"]
        + ["--clusters", "20", "--kinds", "exact,hnsw", "--json"],
    )
    assert result.exit_code == 0, result.output
    bench = json.loads(result.output)
    by_kind = {r["index"]: r for r in bench["results"]}
    assert by_kind["exact"]["recall@10"] == 1.0 and by_kind["hnsw"]["recall@10"] > 0.8
    assert by_kind["hnsw"]["p50_ms"] > 0 and by_kind["hnsw"]["index_bytes"] > 3000 * 32 * 4


def test_csv_mask_column_is_used_instead_of_segmenting(tmp_path, engine):
    """Catalogs often ship product masks: a ``mask`` column is stored as is (staged scenes
    would otherwise need a pretrained saliency model)."""
    from staging.io import load_mask

    rng = np.random.default_rng(3)
    folder = tmp_path / "cat"
    truth = np.zeros((SIZE, SIZE), bool)
    truth[40:150, 33:143] = True
    save_image(folder / "scene.png", _staged_shot("lamp", rng)[0])
    save_mask(tmp_path / "masks" / "scene.png", truth)  # outside the folder: not an image
    save_image(folder / "shot.png", _catalog_shot("box", rng))
    csv_path = folder / "catalog.csv"
    csv_path.write_text(
        "id,image,mask\nS1,scene.png,../masks/scene.png\nS2,shot.png,\nS3,shot.png,nope.png\n"
    )
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    report = engine.update_index(index, folder, csv=csv_path, progress=False)
    assert ("nope.png", "mask listed in catalog.csv but not found") in report.failed
    vector = engine.embed(folder / "scene.png", mask=truth)
    hits = {h.id: h for h in index.search(vector, k=5, staged_only=False)}
    stored = load_mask(hits["S1"].mask, size=(SIZE, SIZE)) >= 0.5
    assert np.array_equal(stored, truth)
    assert "mask" not in hits["S1"].metadata


def test_a_new_embedder_version_asks_for_a_rebuild(tmp_path, catalog, engine, monkeypatch):
    """Vectors of two versions of one embedder are not comparable: refuse, name the fix."""
    from staging.embed.handcrafted import HandcraftedEmbedder

    folder, csv_path, _ = catalog
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    engine.update_index(index, folder, csv=csv_path, progress=False)
    assert index.embedder_version == HandcraftedEmbedder.version
    monkeypatch.setattr(HandcraftedEmbedder, "version", HandcraftedEmbedder.version + 1)
    with pytest.raises(StagingError, match="rebuild"):
        engine.search(folder / "shots" / "p00.png", index=tmp_path / "idx")
    with pytest.raises(StagingError, match="rebuild"):
        engine.update_index(index, folder, progress=False)
    rebuilt = CatalogIndex.open(tmp_path / "idx", rebuild=True)
    engine.update_index(rebuilt, folder, csv=csv_path, progress=False)
    assert rebuilt.embedder_version == HandcraftedEmbedder.version
    assert engine.search(folder / "shots" / "p00.png", index=rebuilt, staged_only=False)


def _index_process(folder, csv_path, out):
    import subprocess
    import sys

    code = "from staging.cli import main; main()"
    cmd = [
        sys.executable,
        "-c",
        code,
        "index",
        str(folder),
        "--out",
        str(out),
        "--csv",
        str(csv_path),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_writer_says_who_holds_the_index_and_waits(tmp_path, catalog):
    from filelock import FileLock

    from staging.catalog.index import WRITER_LOCK, WRITER_PID

    folder, csv_path, _ = catalog
    out = tmp_path / "idx"
    CatalogIndex.open(out, create=True).close()
    with FileLock(str(out / WRITER_LOCK)):
        (out / WRITER_PID).write_text("PID 4242 on testhost")
        proc = _index_process(folder, csv_path, out)
        deadline = time.monotonic() + 60
        line = ""
        while "waiting" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "is being updated by PID 4242 on testhost; waiting" in line
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting while the lock is held
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert _consistent(out) == 12


def test_two_index_runs_at_once_both_finish_with_one_consistent_index(tmp_path, catalog):
    folder, csv_path, _ = catalog
    out = tmp_path / "idx"
    first, second = (_index_process(folder, csv_path, out) for _ in range(2))
    for proc in (first, second):
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    assert _consistent(out) == 12
    db = sqlite3.connect(out / DB_NAME)
    paths = [r[0] for r in db.execute("SELECT path FROM items")]
    db.close()
    assert len(paths) == len(set(paths)) == 12


def test_without_a_segmentation_model_scenes_are_skipped_saying_why_once(tmp_path, engine, capsys):
    rng = np.random.default_rng(5)
    folder = tmp_path / "cat"
    for i in range(2):
        save_image(folder / f"scene{i}.png", _staged_shot("lamp", rng)[0])
    save_image(folder / "shot.png", _catalog_shot("box", rng))
    index = CatalogIndex.open(tmp_path / "idx", create=True)
    report = engine.update_index(index, folder, progress=True)
    err = capsys.readouterr().err
    assert err.count("staging models pull isnet-general-fp16") == 1  # once, at the start
    assert sorted(Path(p).name for p, _ in report.failed) == ["scene0.png", "scene1.png"]
    assert all("needs a pretrained model" in why for _, why in report.failed)
    assert len(index) == 1  # the shot, on the weights-free catalog matting
