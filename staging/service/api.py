"""``staging serve``: the creative service's HTTP API (FastAPI). See :mod:`staging.service`.

Every error is a JSON body ``{"error": "..."}`` with a 4xx status a client can act on: an
unknown product (404), a bad placement, id or image (422), an upload over the size limit
(413). No path from a request reaches the file system outside the service's folders: uploads
are stored as ``products/<id>.png`` (under ``<root>`` or the storage URL), and a registered
``path`` must lie inside ``<root>/inbox`` once ``..`` and symlinks are resolved.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from staging.compose.placement import get_placement, place_product
from staging.errors import StagingError
from staging.io import load_image
from staging.service.storage import Storage
from staging.service.store import ServiceStore

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_UPLOAD = 20 * 2**20
BACKDROP = (245, 245, 245)  # the fallback's plain studio grey


class Feedback(BaseModel):
    """An impression's outcome: was the creative (``theme`` in ``placement``) clicked?"""

    product_id: str
    theme: str
    clicked: bool
    placement: str = "square"
    location: str | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_service(
    engine,
    root: str | Path,
    max_upload: int = MAX_UPLOAD,
    database: str | None = None,
    storage: str | None = None,
    queue: str | None = None,
) -> FastAPI:
    """The service over ``engine`` with its data in ``root``: metadata and queue in
    ``<root>/service.sqlite`` or the PostgreSQL ``database`` (``postgresql://...``), images
    under ``root`` or at the ``storage`` URL (``s3://bucket/prefix``), the queue's order in
    Redis with ``queue`` (``redis://host:6379/0``)."""
    root = Path(root).resolve()
    store = ServiceStore(root, database, queue)
    images = Storage(storage or root)
    inbox = root / "inbox"
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
        return _error(exc.status_code, str(exc.detail))

    def context(target, location: str | None) -> dict[str, Any]:
        """The bandit's context: the ad size (as WxH) and where the user is."""
        placement = f"{target.width}x{target.height}"
        return {k: v for k, v in {"placement": placement, "location": location}.items() if v}

    def served(name: str | None) -> Path | bytes | None:
        """A stored creative: its local file, or its bytes from an object store; None when
        it is gone (then it is generated again)."""
        if name is None:
            return None
        local = images.local_path(name)
        if local is not None:
            return local if local.is_file() else None
        try:
            return images.read(name)
        except FileNotFoundError:
            return None

    def known(product_id: str) -> dict[str, Any]:
        product = store.product(product_id)
        if product is None:
            raise HTTPException(404, f"Unknown product {product_id!r}: register it first.")
        return product

    @app.post("/v1/products", status_code=201)
    async def add_product(
        id: str = Form(...),  # noqa: A002 - the API's field name
        category: str | None = Form(None),
        image: UploadFile | None = File(None),
        path: str | None = Form(None),
    ) -> dict[str, Any]:
        """Register a product: an image upload, or a ``path`` inside ``<root>/inbox``."""
        if not ID.match(id):
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
            source = (inbox / path).resolve()
            if not source.is_relative_to(inbox.resolve()):
                raise HTTPException(422, f"path {path!r} is outside the service's inbox.")
            rgb = load_image(source)
        stored = images.write_png(f"products/{id}.png", rgb)
        segmentation = engine.segment(rgb)  # cached: the fallback and the worker reuse it
        if not segmentation.mask.any():
            raise HTTPException(422, "No product was found in the image.")
        store.add_product(id, stored, category)
        h, w = rgb.shape[:2]
        return {"id": id, "category": category, "width": w, "height": h}

    @app.get("/v1/creative/{product_id}", response_model=None)
    def creative(
        product_id: str,
        placement: str = "square",
        user: str | None = None,
        location: str | None = None,
        interests: str | None = None,
    ) -> Response:
        """The creative: from the cache at once, else a fallback at once and a queued job."""
        product = known(product_id)
        target = get_placement(placement)
        suggestion = engine.suggest_prompt(
            product["category"], context(target, location), interests
        )
        size = f"{target.width}x{target.height}"
        headers = {"X-Theme": suggestion.theme, "Cache-Control": "no-store"}
        cached = served(store.creative(product_id, size, suggestion.theme))
        if cached is not None:
            requests["cached"] += 1
            headers |= {"X-Creative": "cached"}
            if isinstance(cached, Path):  # a local file: sent without a copy
                return FileResponse(cached, media_type="image/png", headers=headers)
            return Response(cached, media_type="image/png", headers=headers)
        job = store.enqueue(product_id, size, suggestion.theme)
        segmentation = engine.segment(images.source(product["image"]))
        placed = place_product(
            segmentation.foreground, segmentation.alpha, target, background=BACKDROP
        )
        ok, png = cv2.imencode(".png", cv2.cvtColor(placed.image, cv2.COLOR_RGB2BGR))
        requests["fallback"] += 1
        fallback = {"X-Creative": "fallback", "X-Job": str(job.id)}
        return Response(png.tobytes(), media_type="image/png", headers=headers | fallback)

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: int) -> dict[str, Any]:
        found = store.job(job_id)
        if found is None:
            raise HTTPException(404, f"No job {job_id}.")
        return found.as_dict()

    @app.post("/v1/feedback")
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
