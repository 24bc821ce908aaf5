"""``staging bench serve``: the creative service under concurrent clients, cold and warm.

A real server (uvicorn, on a free local port, in this process) over a fresh service folder:
the products are registered, then ``clients`` threads send ``requests`` creative requests
spread over the products and placements twice:

* **cold**: nothing generated yet, every answer is the fallback (product on a plain backdrop)
  and each distinct creative queues one job;
* **warm**: after a worker has run the queue, every answer comes from the cache.

Reported per phase: requests/s and latency p50/p95/max (ms), and how many answers were
cached/fallback; plus jobs queued (one per distinct creative, however many requests) and the
worker's seconds per creative. Models load before timing.
"""

from __future__ import annotations

import io
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_serve(
    engine,
    images: list[Path],
    root: Path,
    placements: list[str],
    clients: int = 8,
    requests: int = 200,
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
                data = Path(path).read_bytes()
                response = client.post(
                    "/v1/products", data={"id": product_id},
                    files={"image": (Path(path).name, io.BytesIO(data))},
                )  # fmt: skip
                response.raise_for_status()
                ids.append(product_id)
        wanted = [(ids[i % len(ids)], placements[(i // len(ids)) % len(placements)])
                  for i in range(requests)]  # fmt: skip

        def phase() -> dict:
            latencies, kinds = [], []

            def one(item: tuple[str, str]) -> None:
                with httpx.Client(base_url=base, timeout=60) as client:
                    t0 = time.perf_counter()
                    response = client.get(f"/v1/creative/{item[0]}", params={"placement": item[1]})
                    latencies.append(time.perf_counter() - t0)
                    response.raise_for_status()
                    kinds.append(response.headers["x-creative"])

            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                list(pool.map(one, wanted))
            elapsed = time.perf_counter() - t0
            ordered = sorted(latencies)
            return {
                "requests_per_s": round(len(wanted) / elapsed, 1),
                "p50_ms": round(1000 * statistics.median(ordered), 1),
                "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
                "max_ms": round(1000 * ordered[-1], 1),
                "cached": kinds.count("cached"),
                "fallback": kinds.count("fallback"),
            }

        cold = phase()
        jobs = sum(1 for _ in {w for w in wanted})
        t0 = time.perf_counter()
        generated = run_worker(engine, root, once=True)
        worker_seconds = time.perf_counter() - t0
        warm = phase()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "products": len(ids),
        "placements": placements,
        "clients": clients,
        "requests": requests,
        "distinct_creatives": jobs,
        "generated": generated,
        "worker_s_per_creative": round(worker_seconds / max(1, generated), 3),
        "cold": cold,
        "warm": warm,
    }
