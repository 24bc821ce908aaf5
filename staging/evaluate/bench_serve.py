"""``staging bench serve``: the creative service under concurrent clients, cold and warm.

A real server (uvicorn, on a free local port, in this process) over a fresh service folder;
the clients run in a separate process (:mod:`staging.evaluate.http_load`) so that they never
take the server's CPU through the GIL. The products are registered, then ``clients``
connections request the products × placements in turn:

* **cold**: nothing generated yet; every answer is the fallback (the product on a plain
  backdrop) and each distinct creative queues one job. ``first_per_path`` is the latency of
  each creative's first request, the one that lays out and encodes the fallback;
* **warm**: after a worker has run the queue, every answer comes from the cache;
* **misses**: the warm load, and a creative never asked for before (a new placement) every
  ``MISS_EVERY`` requests: what one miss costs on a busy service (``first_by_kind.fallback``);
* **capacity**: the warm service with every client sending again as soon as it is answered.

Cold, warm and misses are *open* loads: ``rate`` requests/s in all, each client on its own
schedule, latency counted from when a request was due. Models load before timing.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import httpx

from staging.evaluate.http_load import run_load

NEW_PLACEMENTS = ["160x600", "970x250", "1200x628"]  # the misses phase's unseen sizes
MISS_EVERY = 40  # one new creative per this many requests (5/s at 200 requests/s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_serve(
    engine,
    images: list[Path],
    root: Path,
    placements: list[str],
    clients: int = 50,
    rate: float = 200.0,
    seconds: float = 10.0,
) -> dict:
    import uvicorn

    from staging.service.api import create_service
    from staging.service.worker import run_worker

    if not images:
        raise ValueError("bench serve needs at least one product image")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_service(engine, root), host="127.0.0.1", port=port,
                       log_level="warning", access_log=False)
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            ids = []
            for number, path in enumerate(images):
                product_id = f"p{number}"
                response = client.post(
                    "/v1/products", data={"id": product_id},
                    files={"image": (Path(path).name, io.BytesIO(Path(path).read_bytes()))},
                )  # fmt: skip
                response.raise_for_status()
                ids.append(product_id)
        paths = [f"/v1/creative/{i}?placement={p}" for p in placements for i in ids]
        cold = run_load(base, paths, clients, rate, seconds)
        t0 = time.perf_counter()
        generated = run_worker(engine, root, once=True)
        worker_seconds = time.perf_counter() - t0
        warm = run_load(base, paths, clients, rate, seconds)
        unseen = [f"/v1/creative/{i}?placement={p}" for p in NEW_PLACEMENTS for i in ids]
        mixed = [
            unseen[n // MISS_EVERY] if n % MISS_EVERY == 0 else paths[n % len(paths)]
            for n in range(MISS_EVERY * len(unseen))
        ]
        misses = run_load(base, mixed, clients, rate, seconds)
        capacity = run_load(base, paths, clients, None, seconds)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "products": len(ids),
        "placements": placements,
        "distinct_creatives": len(paths),
        "generated": generated,
        "worker_s_per_creative": round(worker_seconds / max(1, generated), 3),
        "cold": cold,
        "warm": warm,
        "misses": misses,
        "capacity": capacity,
    }
