"""The creative service (issue 20, point 3): register, serve from the cache or a fallback at
once, a LIFO queue whose jobs survive a dead worker and are never done twice, feedback to the
bandit, metrics, and 4xx JSON errors for bad input."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from staging import StagingEngine  # noqa: E402
from staging.errors import without_paths  # noqa: E402
from staging.service.api import create_service  # noqa: E402
from staging.service.store import ServiceStore  # noqa: E402
from staging.service.worker import run_worker  # noqa: E402
from tests.helpers.images import png_bytes as _png  # noqa: E402
from tests.helpers.rooms import product_shot  # noqa: E402


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """None (the default SQLite file) or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return None
    return _new_database(request.getfixturevalue("postgres_url"), tmp_path.name)


def _new_database(url: str, name: str) -> str:
    import psycopg

    name = f"t{name.lower().replace('-', '_')}"[-60:]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.replace("/postgres?", f"/{name}?")


@pytest.fixture(scope="module")
def s3_bucket():
    """An S3 bucket on moto's server (the S3-compatible server that installs here, in this
    process, on localhost), reached the way real S3 is: s3fs with AWS_* variables."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("creatives-test")
        yield "creatives-test"
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture()
def service(tmp_path, database):
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    client = TestClient(
        create_service(engine, tmp_path / "svc", max_upload=2**20, database=database)
    )
    shot, _ = product_shot()
    response = client.post(
        "/v1/products", data={"id": "lamp-1", "category": "lamp"},
        files={"image": ("lamp.png", _png(shot), "image/png")},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return engine, client, tmp_path / "svc", database


def test_a_miss_is_a_fallback_at_once_then_the_worker_fills_the_cache(service):
    engine, client, root, database = service
    miss = client.get("/v1/creative/lamp-1", params={"placement": "300x250"})
    assert miss.status_code == 200 and miss.headers["x-creative"] == "fallback"
    fallback = np.asarray(Image.open(io.BytesIO(miss.content)))
    assert fallback.shape == (250, 300, 3)
    assert tuple(fallback[0, 0]) == (245, 245, 245) and fallback.std() > 10  # product on grey
    again = client.get("/v1/creative/lamp-1", params={"placement": "300x250"})
    assert again.headers["x-job"] == miss.headers["x-job"]  # one job per creative
    job = client.get(f"/v1/jobs/{miss.headers['x-job']}").json()
    assert job["status"] == "queued" and job["placement"] == "300x250"

    assert run_worker(engine, root, once=True, database=database) == 1
    assert client.get(f"/v1/jobs/{miss.headers['x-job']}").json()["status"] == "done"
    hit = client.get("/v1/creative/lamp-1", params={"placement": "300x250"})
    assert hit.headers["x-creative"] == "cached" and hit.headers["x-theme"] == job["theme"]
    served = np.asarray(Image.open(io.BytesIO(hit.content)).convert("RGB"))
    assert served.shape == (250, 300, 3) and not np.array_equal(served, fallback)
    metrics = client.get("/metrics").text
    assert 'staging_requests_total{kind="cached"} 1' in metrics
    assert 'staging_requests_total{kind="fallback"} 2' in metrics
    assert 'staging_jobs{status="done"} 1' in metrics
    assert client.get("/healthz").json() == {"status": "ok"}


def test_a_new_photo_for_a_registered_id_is_never_answered_with_the_old_ones_creatives(service):
    """Answers are kept in memory by version: re-registering replaces the photo, and the
    creative regenerated under the same name is sent, not the remembered old one."""
    engine, client, root, database = service
    ask = lambda: client.get("/v1/creative/lamp-1", params={"placement": "120x120"})  # noqa: E731
    old_fallback = ask().content
    run_worker(engine, root, once=True, database=database)
    old = ask()
    assert old.headers["x-creative"] == "cached"

    wide, _ = product_shot(height=50, width=150)
    again = client.post(
        "/v1/products", data={"id": "lamp-1", "category": "lamp"},
        files={"image": ("wide.png", _png(wide), "image/png")},
    )  # fmt: skip
    assert again.status_code == 201
    miss = ask()
    assert miss.headers["x-creative"] == "fallback" and miss.content != old_fallback
    run_worker(engine, root, once=True, database=database)
    new = ask()
    assert new.headers["x-creative"] == "cached" and new.content != old.content
    name = f"creatives/lamp-1/120x120-{new.headers['x-theme']}.png"
    assert new.content == (root / name).read_bytes()  # the same name, the new version


def test_the_queue_is_lifo_and_a_dead_workers_job_is_retried_not_done_twice(tmp_path, database):
    store = ServiceStore(tmp_path, database)
    first = store.enqueue("a", "300x250", "t")
    newest = store.enqueue("b", "300x250", "t")
    claimed = store.claim(lease_seconds=0.01)  # this worker "dies": its lease runs out
    assert claimed.id == newest.id
    time.sleep(0.05)
    retried = store.claim(lease_seconds=60)
    assert retried.id == newest.id and retried.attempts == 2  # taken again, not lost
    image = tmp_path / "x.png"
    image.write_bytes(b"png")
    assert not store.complete(claimed, image, None, {})  # the dead worker's late answer
    assert store.complete(retried, image, "B", {})
    assert not store.complete(retried, image, "B", {})  # done once
    assert store.claim().id == first.id
    store.fail(store.job(first.id), "boom", max_attempts=1)
    assert store.job(first.id).status == "failed" and store.job(first.id).error == "boom"
    assert store.claim() is None


def test_the_redis_queue_orders_the_jobs_and_the_database_keeps_the_last_word(tmp_path, redis_url):
    """Newest first through Redis; an id popped for a job that is no longer queued is skipped;
    a job whose push was lost (a crash between the database and Redis) is still taken; a
    failed attempt goes back on the list."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    store = ServiceStore(tmp_path, queue=redis_url)
    first, second = store.enqueue("a", "1x1", "t"), store.enqueue("b", "1x1", "t")
    assert store.enqueue("b", "1x1", "t").id == second.id  # no second push for one creative
    assert redis.Redis.from_url(redis_url).llen("staging:queue") == 2
    taken = store.claim()
    assert taken.id == second.id
    with sqlite3.connect(tmp_path / "service.sqlite") as db:  # queued, never pushed: "lost"
        lost = db.execute(
            "INSERT INTO jobs (product_id, placement, theme, status, created) "
            "VALUES ('c', '1x1', 't', 'queued', 0) RETURNING id"
        ).fetchone()[0]
    assert store.claim().id == first.id  # Redis's order first ...
    assert store.claim().id == lost  # ... then what only the database has
    store.fail(taken, "boom", max_attempts=3)
    redis.Redis.from_url(redis_url).lpush("staging:queue", lost)  # a stale id: skipped
    retried = store.claim()
    assert (retried.id, retried.attempts) == (second.id, 2)
    assert store.claim() is None


@pytest.mark.parametrize("with_redis", [False, True])
def test_workers_claiming_at_once_never_take_the_same_job(tmp_path, database, with_redis, request):
    """Four workers (each its own connection, as separate processes would have) empty a queue
    of 40 jobs at once: every job is taken exactly once (database claims, or Redis pops)."""
    from concurrent.futures import ThreadPoolExecutor

    queue = None
    if with_redis:
        import redis

        queue = request.getfixturevalue("redis_url")
        redis.Redis.from_url(queue).flushall()
    stores = [ServiceStore(tmp_path, database, queue) for _ in range(4)]
    ids = {stores[0].enqueue(f"p{i}", "300x250", "t").id for i in range(40)}

    def drain(store):
        taken = []
        while (job := store.claim()) is not None:
            taken.append(job.id)
        return taken

    with ThreadPoolExecutor(4) as pool:
        claimed = [i for taken in pool.map(drain, stores) for i in taken]
    assert sorted(claimed) == sorted(ids)
    for store in stores:
        store.close()


def test_two_machines_share_one_postgres_database_and_one_s3_bucket(
    tmp_path, postgres_url, s3_bucket, redis_url
):
    """The service on one machine, a worker on another (their own folders and caches), both
    on PostgreSQL, S3 and a Redis queue: the worker makes what the service queued, the service
    serves it, and the images live in the bucket only."""
    import redis
    import s3fs

    redis.Redis.from_url(redis_url).flushall()
    database = _new_database(postgres_url, tmp_path.name)
    storage = f"s3://{s3_bucket}/{tmp_path.name}"
    service_engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "none"),
                                   cache_dir=str(tmp_path / "a-cache"))  # fmt: skip
    service = create_service(service_engine, tmp_path / "machine-a", database=database,
                             storage=storage, queue=redis_url)  # fmt: skip
    client = TestClient(service)
    shot, _ = product_shot()
    registered = client.post("/v1/products", data={"id": "lamp-1", "category": "lamp"},
                             files={"image": ("lamp.png", _png(shot), "image/png")})  # fmt: skip
    assert registered.status_code == 201, registered.text
    miss = client.get("/v1/creative/lamp-1", params={"placement": "300x250"})
    assert miss.headers["x-creative"] == "fallback"

    worker_engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "none"),
                                  cache_dir=str(tmp_path / "b-cache"))  # fmt: skip
    assert redis.Redis.from_url(redis_url).llen("staging:queue") == 1
    done = run_worker(worker_engine, tmp_path / "machine-b", once=True, database=database,
                      storage=storage, queue=redis_url)  # fmt: skip
    assert done == 1
    hit = client.get("/v1/creative/lamp-1", params={"placement": "300x250"})
    assert hit.headers["x-creative"] == "cached"
    bucket = s3fs.S3FileSystem()
    stored = sorted(bucket.find(storage))
    assert [p.rsplit("/", 2)[-2] for p in stored] == ["lamp-1", "products"], stored
    assert hit.content == bucket.cat_file(stored[0])  # the creative, served from the bucket
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(bucket.cat_file(stored[1])))),
                                  shot)  # fmt: skip
    for machine in ("machine-a", "machine-b"):  # only caches stay on the machines
        assert not {"products", "creatives"} & {p.name for p in (tmp_path / machine).iterdir()}


def test_feedback_teaches_the_categorys_bandit(service):
    engine, client, _, _ = service
    theme = client.get("/v1/creative/lamp-1").headers["x-theme"]
    before = engine.suggest_prompt("lamp", {"placement": "1080x1080"}).updates
    ok = client.post("/v1/feedback", json={"product_id": "lamp-1", "theme": theme, "clicked": True})
    assert ok.status_code == 200, ok.text
    assert engine.suggest_prompt("lamp", {"placement": "1080x1080"}).updates == before + 1


@pytest.mark.parametrize(
    ("call", "status", "text"),
    [
        (lambda c: c.get("/v1/creative/nope"), 404, "Unknown product"),
        (lambda c: c.get("/v1/creative/lamp-1", params={"placement": "huge"}), 422, "huge"),
        (lambda c: c.get("/v1/jobs/999"), 404, "No job"),
        (lambda c: c.post("/v1/feedback", json={"product_id": "lamp-1"}), 422, "theme"),
        (
            lambda c: c.post("/v1/products", data={"id": "x"},
                             files={"image": ("a.png", b"not an image", "image/png")}),
            422, "a.png",
        ),
        (
            lambda c: c.post("/v1/products", data={"id": "big"},
                             files={"image": ("b.png", b"0" * (2**20 + 1), "image/png")}),
            413, "over",
        ),
        (
            lambda c: c.post("/v1/products", data={"id": "../escape"},
                             files={"image": ("c.png", b"x", "image/png")}),
            422, "id",
        ),
        (lambda c: c.post("/v1/products", data={"id": "p", "path": "../../etc/passwd"}),
         422, "outside"),
    ],
)  # fmt: skip
def test_bad_input_is_a_readable_4xx(service, call, status, text):
    _, client, root, _ = service
    response = call(client)
    assert response.status_code == status, response.text
    assert text in response.json()["error"]
    assert not (root.parent / "escape.png").exists()


def test_answers_name_files_never_the_servers_folders(service):
    """A failed job's error (the worker's exception text) and error answers cut paths to
    their file names: a client never learns where the service keeps its files."""
    _, client, root, database = service
    miss = client.get("/v1/creative/lamp-1")
    store = ServiceStore(root, database)
    job = store.claim()
    store.fail(job, f"Cannot read '{root}/products/lamp-1.png': truncated", max_attempts=1)
    answer = client.get(f"/v1/jobs/{miss.headers['x-job']}").json()
    assert answer["status"] == "failed"
    assert answer["error"] == "Cannot read 'lamp-1.png': truncated"
    assert str(root) not in client.get("/v1/creative/nope").text
    assert without_paths("see /srv/a/b.png, http://x/y/z.png and 1/2") == (
        "see b.png, http://x/y/z.png and 1/2"
    )


def test_cli_worker_once(tmp_path, service):
    from typer.testing import CliRunner

    from staging.cli import app

    _, client, root, database = service
    client.get("/v1/creative/lamp-1", params={"placement": "200x200"})
    command = ["--models-dir", str(tmp_path / "none"), "worker", "--root", str(root), "--once"]
    result = CliRunner().invoke(app, command + (["--db", database] if database else []))
    assert result.exit_code == 0 and "1 creatives generated" in result.output
    assert Path(root / "creatives" / "lamp-1").is_dir()


def test_bench_serve_cold_then_warm(tmp_path):
    from staging.evaluate.bench_serve import bench_serve
    from staging.io import save_image

    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    shot, _ = product_shot()
    image = save_image(tmp_path / "shot.png", shot)
    report = bench_serve(engine, [image], tmp_path / "svc", ["64x64", "96x48"], 2, 20.0, 0.5)
    assert report["distinct_creatives"] == report["generated"] == 2  # ~10 requests, 2 creatives
    cold, warm, capacity = report["cold"], report["warm"], report["capacity"]
    assert cold["requests"] >= 8 and cold["fallback"] == cold["requests"] and not cold["errors"]
    assert cold["first_by_kind"]["fallback"]["count"] == 2  # one first answer per creative
    assert warm["cached"] == warm["requests"] >= 8 and not warm["errors"]
    assert capacity["cached"] == capacity["requests"] > warm["requests"]  # no pause: more sent
    assert 0 < warm["p50_ms"] <= warm["p99_ms"] <= warm["max_ms"]
    misses = report["misses"]  # unseen placements mixed into the warm load
    assert misses["first_by_kind"]["fallback"]["count"] >= 1 and misses["cached"] > 0


def test_a_worker_killed_mid_job_leaves_it_to_another(tmp_path, database):
    """``kill -9`` a real ``staging worker`` while it generates: the job is not lost (another
    worker takes it when the lease runs out) and not done twice (one creative)."""
    import os
    import signal
    import subprocess
    import sys

    from staging.io import save_image

    root = tmp_path / "svc"
    store = ServiceStore(root, database)
    shot, _ = product_shot()
    store.add_product("p", save_image(root / "products" / "p.png", shot), None)
    job = store.enqueue("p", "3000x3000", "studio")  # big: seconds to render, time to kill
    command = [sys.executable, "-m", "staging", "--models-dir", str(tmp_path / "none"), "worker",
               "--root", str(root), "--once", "--lease", "2"]  # fmt: skip
    command += ["--db", database] if database else []
    env = dict(os.environ, STAGING_AUTO_PULL="0")
    root_dir = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(command, cwd=root_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while store.job(job.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.job(job.id).status == "running", "the worker never took the job"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.job(job.id).status == "running"  # stuck with the dead worker ...
    assert store.creative("p", "3000x3000", "studio") is None
    time.sleep(2.1)  # ... until its lease runs out
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "none"))
    assert run_worker(engine, root, once=True, database=database) == 1
    done = store.job(job.id)
    assert done.status == "done" and done.attempts == 2
    assert store.counts()["creatives"] == 1
    assert len(list((root / "creatives" / "p").glob("*.png"))) == 1


def test_local_storage_writes_whole_files_and_reads_older_absolute_names(tmp_path):
    from staging.errors import StagingError
    from staging.service.storage import Storage

    images = Storage(tmp_path / "svc")
    name = images.write_png("creatives/p/300x250-t.png", np.zeros((4, 6, 3), np.uint8))
    assert name == "creatives/p/300x250-t.png"
    assert [p.name for p in (tmp_path / "svc" / "creatives" / "p").iterdir()] == ["300x250-t.png"]
    assert Image.open(io.BytesIO(images.read(name))).size == (6, 4)
    older = str(tmp_path / "svc" / name)  # session 10 stored absolute paths
    assert images.read(older) == images.read(name) and images.local_path(older).is_file()
    with pytest.raises(FileNotFoundError):
        images.read("creatives/none.png")
    with pytest.raises(StagingError, match="Cannot store images"):
        Storage("nosuchprotocol://bucket")


def test_the_load_counts_a_late_answer_from_when_the_request_was_due():
    """Open load: one client due every 20 ms against a server taking 60 ms per answer falls
    further behind with each request; timing from the send instead would hide it (~60 ms)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from staging.evaluate.http_load import measure

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - the standard library's name
            time.sleep(0.06)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("X-Creative", "cached")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        late = measure(base, ["/a"], clients=1, rate=50.0, seconds=1.0)
        paced = measure(base, ["/a"], clients=1, rate=None, seconds=1.0)
    finally:
        server.shutdown()
    assert late["requests"] >= 10 and late["max_ms"] > 400  # ~16 answers, due over 1 s
    assert paced["requests"] >= 10 and paced["max_ms"] < 400  # each timed from its send
    assert late["cached"] == late["requests"] and late["offered_per_s"] == 50.0


def test_a_burst_of_requests_for_one_missing_answer_makes_it_once():
    """The first request for a creative lays out and encodes its fallback; the 49 others
    arriving meanwhile wait for that one instead of each encoding their own."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from staging.service.api import _Memory

    memory, calls, gate = _Memory(2**20), [], threading.Event()

    def make() -> bytes:
        calls.append(1)
        gate.wait(5)
        return b"fallback"

    with ThreadPoolExecutor(8) as pool:
        answers = [
            pool.submit(memory.get, ("fallback", "p", 1.0, "300x250"), make) for _ in range(8)
        ]
        time.sleep(0.2)
        gate.set()
        assert [a.result() for a in answers] == [b"fallback"] * 8
    assert len(calls) == 1
    small = _Memory(4)  # a value over the budget is answered, not kept
    assert small.get(("k",), lambda: b"12345") == b"12345" and small.peek(("k",)) is None
