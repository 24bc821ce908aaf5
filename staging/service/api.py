"""``staging serve``: the creative service's HTTP API (FastAPI). See :mod:`staging.service`.

Every error is a JSON body ``{"error": "..."}`` with a 4xx status a client can act on: an
unknown product (404), a bad placement, id or image (422), an upload over the size limit
(413), a write without the service's API key when it has one (401). No path from a request
reaches the file system outside the service's folders: uploads are stored as
``products/<id>.png`` (under ``<root>`` or the storage URL), and a registered ``path`` must
lie inside ``<root>/inbox`` once ``..`` and symlinks are resolved.

With an API key (``create_service(api_key=)``; ``staging serve --api-key-file`` or
``STAGING_API_KEY``) the write endpoints, :data:`WRITES`, answer 401 unless the request
carries it as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; reads stay open.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cachetools import LRUCache
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from staging.access import PRODUCT_ID, in_inbox
from staging.compose.placement import get_placement
from staging.errors import StagingError, without_paths
from staging.io import load_image
from staging.pipelines.generated import on_backdrop
from staging.service.storage import Storage
from staging.service.store import ServiceStore

MAX_UPLOAD = 20 * 2**20
MEMORY = 256 * 2**20  # bytes of recent answers and cut-outs kept ready
CACHED = {"X-Creative": "cached"}
API_KEY_ENV = "STAGING_API_KEY"  # the key itself; STAGING_API_KEY_FILE names a file holding it
KEY = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII, no spaces: it travels in a header
WRITES = ("POST /v1/products", "POST /v1/feedback")  # what the API key guards


def _nbytes(value: Any) -> int:
    return sum(map(_nbytes, value)) if isinstance(value, tuple) else memoryview(value).nbytes


class _Memory:
    """Recent answers (encoded creatives and fallbacks) and product cut-outs, least recently
    used dropped first. A cached answer is then a lookup and one send; streaming the file
    instead (``FileResponse``) cost a thread-pool hop per 64 KB chunk, ~50 for a 1080² PNG,
    and a fallback re-estimated the product's colours (70 ms). Keys carry the version (a
    regenerated creative, a re-registered product) so nothing stale is sent."""

    def __init__(self, budget: int):
        self._items: LRUCache = LRUCache(maxsize=budget, getsizeof=_nbytes)
        self._lock = threading.Lock()  # the event loop and the thread pool both use it
        self._making: dict[tuple, threading.Event] = {}

    def peek(self, key: tuple) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple, value: Any) -> None:
        if _nbytes(value) <= self._items.maxsize:
            with self._lock:
                self._items[key] = value

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The value under ``key``, made by ``make()`` (outside the lock) when missing. A
        burst of requests for one missing value makes it once: the others wait for it."""
        with self._lock:
            if (found := self._items.get(key)) is not None:
                return found
            making = self._making.get(key)
            if making is None:
                self._making[key] = threading.Event()
        if making is not None:
            making.wait()
            return self.peek(key) or make()  # made and already evicted, or failed
        try:
            if (found := make()) is not None:
                self.put(key, found)
            return found
        finally:
            with self._lock:
                self._making.pop(key).set()


class Feedback(BaseModel):
    """An impression's outcome: was the creative (``theme`` in ``placement``) clicked?"""

    product_id: str
    theme: str
    clicked: bool
    placement: str = "square"
    location: str | None = None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error answer: the message with paths cut to file names (no server folders)."""
    return JSONResponse({"error": without_paths(message)}, status_code=status, headers=headers)


def check_api_key(key: str, source: str = "api_key") -> str:
    """``key`` when it can be sent in a header; a :class:`StagingError` naming ``source``."""
    if not KEY.match(key):
        raise StagingError(
            f"The API key from {source} must be visible ASCII characters without spaces "
            "(e.g. the output of `openssl rand -hex 32`)."
        )
    return key


def read_api_key(path: str | Path) -> str:
    """The API key in the file ``path``, stripped; a :class:`StagingError` saying why when
    the file cannot be read or holds no key."""
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise StagingError(f"The API key file {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise StagingError(
            f"Cannot read the API key file {path}: {exc.strerror or type(exc).__name__}."
        ) from None
    if not key:
        raise StagingError(f"The API key file {path} is empty.")
    return check_api_key(key, f"the file {path}")


def api_key_from(path: str | Path | None, environ=os.environ) -> str | None:
    """The service's API key: from the file ``path`` or the ``STAGING_API_KEY`` variable;
    None (the write endpoints open) when neither is given. Both given, or a variable set
    but empty, is refused rather than guessed at."""
    given = environ.get(API_KEY_ENV)
    if path is not None and given is not None:
        raise StagingError(f"Give the API key one way: --api-key-file or {API_KEY_ENV}.")
    if path is not None:
        return read_api_key(path)
    if given is None:
        return None
    if not given.strip():
        raise StagingError(f"{API_KEY_ENV} is set but empty: unset it to leave writes open.")
    return check_api_key(given.strip(), API_KEY_ENV)


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")


def _require_key(api_key: str) -> Callable:
    """The dependency of the write endpoints: 401 unless the request carries ``api_key``."""
    expected = check_api_key(api_key).encode()

    async def authorized(
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header: str | None = Depends(_key_header),
    ) -> None:
        given = [v.strip() for v in (bearer and bearer.credentials, header) if v]
        if not given:
            raise HTTPException(
                401, "This endpoint needs the service's API key: send "
                "'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        # Headers arrive decoded as latin-1: its bytes are what the client sent.
        matches = [hmac.compare_digest(v.encode("latin-1"), expected) for v in given]
        if not any(matches):
            raise HTTPException(
                401, "Wrong API key.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )

    return authorized


def create_service(
    engine,
    root: str | Path,
    max_upload: int = MAX_UPLOAD,
    database: str | None = None,
    storage: str | None = None,
    queue: str | None = None,
    memory: int = MEMORY,
    api_key: str | None = None,
) -> FastAPI:
    """The service over ``engine`` with its data in ``root``: metadata and queue in
    ``<root>/service.sqlite`` or the PostgreSQL ``database`` (``postgresql://...``), images
    under ``root`` or at the ``storage`` URL (``s3://bucket/prefix``), the queue's order in
    Redis with ``queue`` (``redis://host:6379/0``); ``memory`` bytes of recent answers kept
    ready to send. With ``api_key`` the write endpoints (:data:`WRITES`) need it; without,
    anyone who reaches the port may register products and send feedback."""
    writes = [Depends(_require_key(api_key))] if api_key is not None else []
    root = Path(root).resolve()
    store = ServiceStore(root, database, queue)
    images = Storage(storage or root)
    inbox = root / "inbox"
    recent = _Memory(memory)
    requests: Counter[str] = Counter()
    app = FastAPI(title="Product Staging Studio creative service", version="1")
    app.state.store = store

    @app.exception_handler(StagingError)
    async def staging_error(request: Request, exc: StagingError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = lambda e: ".".join(str(p) for p in e["loc"] if p != "body")  # noqa: E731
        return _error(422, "; ".join(f"{where(e)}: {e['msg']}" for e in exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    def context(target, location: str | None) -> dict[str, Any]:
        """The bandit's context: the ad size (as WxH) and where the user is."""
        placement = f"{target.width}x{target.height}"
        return {k: v for k, v in {"placement": placement, "location": location}.items() if v}

    def stored(name: str) -> bytes | None:
        """A stored creative's bytes; None when it is gone (then it is generated again)."""
        try:
            return images.read(name)
        except FileNotFoundError:
            return None

    def known(product_id: str) -> dict[str, Any]:
        product = store.product(product_id)
        if product is None:
            raise HTTPException(404, f"Unknown product {product_id!r}: register it first.")
        return product

    @app.post("/v1/products", status_code=201, dependencies=writes)
    async def add_product(
        id: str = Form(...),  # noqa: A002 - the API's field name
        category: str | None = Form(None),
        image: UploadFile | None = File(None),
        path: str | None = Form(None),
    ) -> dict[str, Any]:
        """Register a product: an image upload, or a ``path`` inside ``<root>/inbox``."""
        if not PRODUCT_ID.match(id):
            raise HTTPException(422, "id: letters, digits, '.', '_' or '-', at most 100.")
        if (image is None) == (path is None):
            raise HTTPException(422, "Send either an image upload or a path, not both.")
        if image is not None:
            data = await image.read(max_upload + 1)
            if len(data) > max_upload:
                raise HTTPException(413, f"The image is over {max_upload // 2**20} MB.")
            name = image.filename or "upload"
            try:
                rgb = load_image(data)
            except StagingError as exc:
                raise HTTPException(422, f"{name}: {exc}") from None
        else:
            source = in_inbox(inbox, path)
            if source is None:
                raise HTTPException(422, f"path {path!r} is outside the service's inbox.")
            rgb = load_image(source)
        await run_in_threadpool(register, id, category, rgb)  # seconds: off the event loop
        h, w = rgb.shape[:2]
        return {"id": id, "category": category, "width": w, "height": h}

    def register(product_id: str, category: str | None, rgb) -> None:
        name = images.write_png(f"products/{product_id}.png", rgb)
        segmentation = engine.segment(rgb)  # cached: the worker reuses it
        if not segmentation.mask.any():
            raise HTTPException(422, "No product was found in the image.")
        store.add_product(product_id, name, category)
        created = store.product(product_id)["created"]
        recent.put(("cutout", product_id, created), cut_out(segmentation))

    def cut_out(segmentation) -> tuple[np.ndarray, np.ndarray]:
        return segmentation.foreground, segmentation.alpha

    @app.get("/v1/creative/{product_id}", response_model=None)
    async def creative(
        product_id: str,
        placement: str = "square",
        user: str | None = None,
        location: str | None = None,
        interests: str | None = None,
    ) -> Response:
        """The creative: from the cache at once, else a fallback at once and a queued job.
        A remembered answer is sent from the event loop (lookups of microseconds); reading
        storage and making a fallback run on the thread pool."""
        product = known(product_id)
        target = get_placement(placement)
        suggestion = engine.suggest_prompt(
            product["category"], context(target, location), interests
        )
        size = f"{target.width}x{target.height}"
        headers = {"X-Theme": suggestion.theme, "Cache-Control": "no-store"}
        if made := store.creative(product_id, size, suggestion.theme):
            key = ("creative", *made)
            cached = recent.peek(key) or await run_in_threadpool(
                recent.get, key, lambda: stored(made[0])
            )
            if cached:
                requests["cached"] += 1
                return Response(cached, media_type="image/png", headers=headers | CACHED)
        job, png = await run_in_threadpool(miss, product, target, size, suggestion.theme)
        requests["fallback"] += 1
        headers |= {"X-Creative": "fallback", "X-Job": str(job.id)}
        return Response(png, media_type="image/png", headers=headers)

    def miss(product: dict[str, Any], target, size: str, theme: str):
        """Queue the creative (one job however many ask) and answer with the fallback: the
        product's cut-out on the plain backdrop at the placement's size."""
        job = store.enqueue(product["id"], size, theme)
        version = (product["id"], product["created"])
        png = recent.get(("fallback", *version, size), lambda: fallback(product, target))
        return job, png

    def fallback(product: dict[str, Any], target) -> bytes:
        key = ("cutout", product["id"], product["created"])
        foreground, alpha = recent.get(
            key, lambda: cut_out(engine.segment(images.source(product["image"])))
        )
        placed = on_backdrop(foreground, alpha, target)
        return cv2.imencode(".png", cv2.cvtColor(placed, cv2.COLOR_RGB2BGR))[1].tobytes()

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: int) -> dict[str, Any]:
        found = store.job(job_id)
        if found is None:
            raise HTTPException(404, f"No job {job_id}.")
        answer = found.as_dict()
        if answer.get("error"):  # the worker's exception text, e.g. naming a stored file
            answer["error"] = without_paths(answer["error"])
        return answer

    @app.post("/v1/feedback", dependencies=writes)
    def feedback(event: Feedback) -> dict[str, Any]:
        """Teach the product category's bandit: a click is reward 1, none 0."""
        product = known(event.product_id)
        target = get_placement(event.placement)
        engine.record_feedback(
            product["category"], event.theme, context(target, event.location),
            1.0 if event.clicked else 0.0,
        )  # fmt: skip
        requests["feedback"] += 1
        return {"recorded": True}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        """Prometheus text format."""
        lines = ["# TYPE staging_requests_total counter"]
        for kind in ("cached", "fallback", "feedback"):
            lines.append(f'staging_requests_total{{kind="{kind}"}} {requests[kind]}')
        counts = store.counts()
        lines.append("# TYPE staging_jobs gauge")
        for status in ("queued", "running", "done", "failed"):
            lines.append(f'staging_jobs{{status="{status}"}} {counts.get(f"jobs_{status}", 0)}')
        lines += [
            "# TYPE staging_products gauge", f"staging_products {counts['products']}",
            "# TYPE staging_creatives gauge", f"staging_creatives {counts['creatives']}",
        ]  # fmt: skip
        return "\n".join(lines) + "\n"

    return app
