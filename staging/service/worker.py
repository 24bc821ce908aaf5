"""``staging worker``: runs the service's generation queue (see :mod:`staging.service`)."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

from staging.service.storage import Storage
from staging.service.store import ServiceStore

log = logging.getLogger(__name__)


def run_worker(
    engine,
    root: str | Path,
    once: bool = False,
    poll: float = 1.0,
    lease: float = 300.0,
    max_attempts: int = 3,
    stop: threading.Event | None = None,
    database: str | None = None,
    storage: str | None = None,
    queue: str | None = None,
) -> int:
    """Take jobs newest first and generate each creative; returns how many were done.

    ``once``: stop when the queue is empty (else poll every ``poll`` s until ``stop`` is
    set). A job is leased for ``lease`` s: if this process dies, another worker takes it when
    the lease runs out. A failure puts the job back until ``max_attempts``, then marks it
    failed with the error. ``database``, ``storage`` and ``queue``: the service's PostgreSQL,
    image storage and Redis URLs, when it uses them (see
    :func:`staging.service.api.create_service`).
    """
    root = Path(root).resolve()
    store = ServiceStore(root, database, queue)
    images = Storage(storage or root)
    done = 0
    try:
        while stop is None or not stop.is_set():
            job = store.claim(lease)
            if job is None:
                if once:
                    break
                time.sleep(poll)
                continue
            try:
                product = store.product(job.product_id)
                photo = images.source(product["image"])
                width, height = (int(v) for v in job.placement.split("x"))
                staged = engine.stage_prompt(
                    photo, theme=job.theme, category=product["category"],
                    placement=(width, height), cache=root / "generations",
                )[0]  # fmt: skip
                theme = re.sub(r"[^A-Za-z0-9._-]+", "_", job.theme)
                name = images.write_png(
                    f"creatives/{job.product_id}/{job.placement}-{theme}.png", staged.image
                )
                if store.complete(job, name, staged.source.get("bucket"), staged.models):
                    done += 1
            except Exception as exc:  # noqa: BLE001 - one bad job must not stop the worker
                log.exception("job %s failed", job.id)
                store.fail(job, str(exc) or type(exc).__name__, max_attempts)
    finally:
        store.close()
    return done
