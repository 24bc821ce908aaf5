"""``staging batch`` (issue 20, point 1): one file per product x mode x placement (x candidate),
an SQLite manifest, failures recorded and skipped, re-runs skip what is done, and a run killed
with SIGKILL resumes without losing, duplicating or half-writing anything."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from staging import StagingEngine
from staging.batch import MANIFEST, read_products, run_batch
from staging.cli import app
from staging.errors import StagingError
from staging.io import load_image, save_image
from tests.helpers.rooms import demo_index, product_shot  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["64x64", "48x96"]  # small placements: the weights-free backdrop renders fast


def _products(folder: Path, count: int = 2, broken: bool = True) -> Path:
    for number in range(count):
        shot, _ = product_shot(100 + 10 * number, 60)
        save_image(folder / f"p{number}.png", shot)
    if broken:
        (folder / "broken.png").write_bytes(b"not an image")
    return folder


def _rows(out: Path, sql: str = "SELECT * FROM outputs") -> list[dict]:
    with sqlite3.connect(out / MANIFEST) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


@pytest.fixture()
def engine(tmp_path):
    return StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))


def test_a_folder_in_two_modes_with_a_broken_file(tmp_path, engine, monkeypatch):
    source = _products(tmp_path / "in")
    out = tmp_path / "out"
    summary = run_batch(
        engine, source, out, modes=["vanilla", "prompt"], placements=SMALL, progress=False
    )
    assert (summary.units, summary.done, summary.outputs) == (6, 4, 8)
    assert sorted((p, m) for p, m, _ in summary.failed) == [
        ("broken", "prompt"), ("broken", "vanilla")
    ]  # fmt: skip
    assert "not an image" in summary.failed[0][2]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert files == [
        f"{mode}/p{n}.{size}.png" for mode in ("prompt", "vanilla") for n in (0, 1)
        for size in ("48x96", "64x64")
    ]  # fmt: skip
    assert load_image(out / "vanilla" / "p0.48x96.png").shape == (96, 48, 3)
    rows = _rows(out)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 8 and all(r["bucket"] and r["seconds"] > 0 for r in done)
    assert json.loads(done[0]["models"])["backend"] == "studio"
    errors = [r for r in rows if r["status"] == "error"]
    assert sorted((r["mode"], r["placement"]) for r in errors) == [
        ("prompt", "48x96"), ("prompt", "64x64"), ("vanilla", "48x96"), ("vanilla", "64x64")
    ]  # fmt: skip
    assert all(r["product_id"] == "broken" and "not an image" in r["error"] for r in errors)

    # Again: what is done is skipped (the engine is not called), the failure is retried.
    calls = []
    monkeypatch.setattr(engine, "stage_vanilla", lambda *a, **k: calls.append(a) or [])
    monkeypatch.setattr(engine, "stage_prompt", lambda *a, **k: calls.append(a) or [])
    again = run_batch(
        engine, source, out, modes=["vanilla", "prompt"], placements=SMALL, progress=False
    )
    assert (again.skipped, again.done, len(again.failed)) == (4, 2, 0)
    assert [Path(a[0]).name for a in calls] == ["broken.png", "broken.png"]
    # Other settings are other work: a new placement stages everything again.
    third = run_batch(engine, source, out, modes=["vanilla"], placements=["32x32"], progress=False)
    assert third.skipped == 0 and third.done == 3


def test_copy_paste_writes_one_file_per_candidate(tmp_path, engine, demo_index):  # noqa: F811
    index, _ = demo_index
    source = _products(tmp_path / "in", count=1, broken=False)
    out = tmp_path / "out"
    summary = run_batch(engine, source, out, modes=["copy-paste"], index=index, k=2,
                        fmt="jpg", progress=False)  # fmt: skip
    assert summary.done == 1 and summary.outputs == 2
    rows = _rows(out)
    assert [(r["placement"], r["candidate"], r["path"]) for r in rows] == [
        ("scene", 1, "copy-paste/p0.scene.1.jpg"), ("scene", 2, "copy-paste/p0.scene.2.jpg")
    ]  # fmt: skip
    assert json.loads(rows[0]["models"])["inpaint_backend"] == "structure"
    with pytest.raises(StagingError, match="needs a catalog index"):
        run_batch(engine, source, out, modes=["copy-paste"], progress=False)
    with pytest.raises(StagingError, match="Unknown mode"):
        run_batch(engine, source, out, modes=["sketch"], progress=False)


def test_csv_input(tmp_path):
    _products(tmp_path, count=2, broken=False)
    (tmp_path / "catalog.csv").write_text(
        "id,image,category,type,size\nA 1,p0.png,chair,Chair,45x52 cm\nB,p1.png,,,\n"
    )
    products = read_products(tmp_path / "catalog.csv")
    assert [(p.id, p.image.name, p.category, p.type, p.size) for p in products] == [
        ("A_1", "p0.png", "chair", "Chair", "45x52 cm"), ("B", "p1.png", None, None, None)
    ]  # fmt: skip
    (tmp_path / "twice.csv").write_text("id,image\nA,p0.png\nA,p1.png\n")
    with pytest.raises(StagingError, match="repeated"):
        read_products(tmp_path / "twice.csv")
    (tmp_path / "bad.csv").write_text("path\np0.png\n")
    with pytest.raises(StagingError, match="'image' column"):
        read_products(tmp_path / "bad.csv")


def test_a_run_killed_with_sigkill_resumes_without_loss_or_duplicates(tmp_path):
    source = _products(tmp_path / "in", count=8, broken=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "staging", "--models-dir", str(tmp_path / "none"), "batch",
               str(source), "--out", str(out), "--modes", "vanilla", "--placements", "64x64",
               "--placements", "96x48", "--json"]  # fmt: skip
    env = dict(os.environ, STAGING_AUTO_PULL="0")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / MANIFEST).exists():
            try:
                done = _rows(out, "SELECT * FROM units WHERE status='done'")
            except sqlite3.OperationalError:  # the schema is being created
                done = []
            if len(done) >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(_rows(out, "SELECT * FROM units WHERE status='done'"))
    assert 2 <= before < 8

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["skipped"] == before and summary["done"] == 8 - before
    rows = _rows(out)
    assert len(rows) == 16 and all(r["status"] == "done" for r in rows)
    assert len({(r["product_id"], r["placement"]) for r in rows}) == 16  # no duplicates
    for row in rows:
        image = load_image(out / row["path"])  # every file whole and readable
        assert image.shape[:2] in ((64, 64), (48, 96)) and image.std() > 0
    assert not list(out.rglob("*.tmp"))  # nothing half-written left behind
    assert len(list(out.rglob("*.png"))) == 16


def test_cli_batch_summary_and_exit_code(tmp_path):
    source = _products(tmp_path / "in", count=1)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["--models-dir", str(tmp_path / "none"), "batch", str(source), "--out", str(out),
         "--modes", "vanilla", "--placements", "64x64,32x32"],
    )  # fmt: skip
    assert result.exit_code == 1  # one product failed
    assert "1 units staged (2 files)" in result.output and "failed broken" in result.output
    assert np.asarray(load_image(out / "vanilla" / "p0.32x32.png")).shape == (32, 32, 3)


def test_one_batch_per_output_folder(tmp_path, engine):
    from filelock import FileLock

    from staging.batch import LOCK

    source = _products(tmp_path / "in", count=1, broken=False)
    out = tmp_path / "out"
    out.mkdir()
    busy = pytest.raises(StagingError, match="Another batch is writing")
    with FileLock(str(out / LOCK)), busy:  # another batch is writing there
        run_batch(engine, source, out, modes=["vanilla"], placements=["32x32"])
    assert run_batch(engine, source, out, modes=["vanilla"], placements=["32x32"]).done == 1


def test_the_ray_engine_writes_the_same_files_and_manifest_as_the_local_one(tmp_path, engine):
    """``--engine ray`` on a local Ray cluster (two actors, each with its own engine): the
    same outputs, pixel for pixel, and the same manifest rows as threads, broken file
    included; a re-run skips everything."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    source = _products(tmp_path / "in", count=3)
    options = dict(modes=["vanilla"], placements=SMALL, progress=False)
    local = run_batch(engine, source, tmp_path / "local", workers=2, **options)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = run_batch(engine, source, tmp_path / "ray", workers=2, engine_kind="ray",
                           **options)  # fmt: skip
        again = run_batch(engine, source, tmp_path / "ray", workers=2, engine_kind="ray",
                          **options)  # fmt: skip
    finally:
        ray.shutdown()
    assert (remote.done, remote.outputs, len(remote.failed)) == (3, 6, 1)
    assert (local.done, local.outputs, remote.failed) == (3, 6, local.failed)
    assert (again.skipped, again.done) == (3, 0)
    sql = "SELECT product_id, mode, placement, candidate, bucket, path, status, error, models " \
          "FROM outputs ORDER BY product_id, placement"  # fmt: skip
    assert _rows(tmp_path / "ray", sql) == _rows(tmp_path / "local", sql)
    for row in _rows(tmp_path / "local", sql):
        if row["path"]:
            a, b = (load_image(tmp_path / run / row["path"]) for run in ("local", "ray"))
            assert np.array_equal(a, b), row["path"]


def test_an_unknown_batch_engine_is_refused(tmp_path, engine):
    with pytest.raises(StagingError, match="local or ray"):
        run_batch(engine, _products(tmp_path / "in"), tmp_path / "out", modes=["vanilla"],
                  engine_kind="spark", progress=False)  # fmt: skip
