"""HTTP load for ``staging bench serve``, run in its own process so that the clients never take
the server's CPU time through the GIL: ``python -m staging.evaluate.http_load`` reads a JSON
plan on stdin and prints the measurements as JSON.

``clients`` connections (kept alive) each send one request at a time. With ``rate``
(requests/s over all clients) each client sends on its own fixed schedule and a request's
latency counts from the moment it was *due*, so a server that falls behind is charged for the
wait too (no "coordinated omission"); without a rate, each client sends its next request as
soon as the last answer arrives, which measures the server's capacity.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import urlsplit


class _Connection:
    """One kept-alive HTTP/1.1 connection sending GETs. Written on asyncio streams rather
    than with an HTTP client library: httpx spent more CPU per request than the server (it
    capped the load at ~150 requests/s where wrk reached 500), and the clients share the
    server's cores. Enough HTTP for this server: ``Content-Length`` bodies only."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        await self.reader.readexactly(int(headers.get("content-length", 0)))
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(base: str, paths: list[str], clients: int, rate: float | None, seconds: float):
    loop = asyncio.get_running_loop()
    url = urlsplit(base)
    period = clients / rate if rate else 0.0  # each client's interval
    records: list[tuple[int, float, int, str]] = []  # (request number, latency, status, kind)
    start = loop.time() + 0.05
    end = start + seconds

    async def client(number: int) -> None:
        connection = _Connection(url.hostname, url.port)
        sent = 0
        try:
            while True:
                due = start + (number / clients + sent) * period if rate else loop.time()
                if due >= end:
                    return
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                request = number + sent * clients
                status, headers = await connection.get(paths[request % len(paths)])
                kind = headers.get("x-creative", "")
                records.append((request, loop.time() - due, status, kind))
                sent += 1
        finally:
            connection.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return records, loop.time() - start


def measure(base: str, paths: list[str], clients: int, rate: float | None, seconds: float) -> dict:
    """Send the load and summarise it: requests/s, latency percentiles (ms), the answers'
    statuses and ``X-Creative`` kinds, and percentiles per kind, over every answer and over
    each path's first answer."""
    try:
        import uvloop  # uvicorn[standard]'s event loop: a cheaper client too

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    records, elapsed = run(_load(base, paths, clients, rate, seconds))

    def percentile(values: list[float], q: float) -> float:
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)

    def summary(values: list[float]) -> dict[str, float]:
        values = sorted(values)
        return {
            "count": len(values), "p50_ms": percentile(values, 0.5),
            "p99_ms": percentile(values, 0.99), "max_ms": round(1000 * values[-1], 1),
        }  # fmt: skip

    latencies = sorted(r[1] for r in records)
    first: dict[str, tuple[float, str]] = {}  # each path's first answer: latency and kind
    for request, latency, _, kind in sorted(records):
        first.setdefault(paths[request % len(paths)], (latency, kind))
    kinds = sorted({r[3] for r in records if r[3]})
    return {
        "clients": clients,
        "offered_per_s": rate,
        "requests": len(records),
        "requests_per_s": round(len(records) / elapsed, 1),
        "p50_ms": percentile(latencies, 0.5),
        "p90_ms": percentile(latencies, 0.9),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": round(1000 * latencies[-1], 1),
        "errors": sum(r[2] >= 400 for r in records),
        **{kind: sum(r[3] == kind for r in records) for kind in kinds},
        # per answer kind: every answer, and each path's first (a fallback made, not recalled)
        "by_kind": {kind: summary([r[1] for r in records if r[3] == kind]) for kind in kinds},
        "first_by_kind": {
            kind: summary([lat for lat, k in first.values() if k == kind])
            for kind in sorted({k for _, k in first.values() if k})
        },
    }


def run_load(base: str, paths: list[str], clients: int, rate: float | None, seconds: float) -> dict:
    """:func:`measure` in a fresh Python process (this function waits for it)."""
    import subprocess

    plan = json.dumps({"base": base, "paths": paths, "clients": clients, "rate": rate,
                       "seconds": seconds})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", __name__], input=plan, capture_output=True, text=True,
        timeout=seconds + 120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    print(json.dumps(measure(**json.load(sys.stdin))))
