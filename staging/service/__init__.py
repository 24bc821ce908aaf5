"""The creative service (seed 002, "BGGEN service"): ad servers ask for a product's creative
in a placement and get an answer at once.

* ``staging serve`` (:func:`staging.service.api.create_service`, FastAPI): products are
  registered by upload; ``GET /v1/creative/{id}?placement=WxH`` answers from the creative
  cache, or — on a miss — with the product positioned on a plain backdrop, marked as a
  fallback, and queues the generation; the category's LinUCB bandit picks the theme, and
  ``POST /v1/feedback`` teaches it;
* ``staging worker`` (:func:`staging.service.worker.run_worker`) takes the newest queued job
  first (LIFO, as in the seed: the freshest request is the likeliest to be asked again),
  generates, stores the image and marks the job done.

Defaults need nothing running: SQLite (:class:`~staging.service.store.ServiceStore`) holds
the products, the creatives and the queue, and a local folder the images; a PostgreSQL
database (``--db postgresql://...``) can hold the first three for workers on several machines.
A job is leased to a
worker for a while; a worker killed mid-job lets the lease run out and the job is taken again
(retried, never lost), and only the lease holder can complete it (never done twice).
"""

from staging.service.store import ServiceStore

__all__ = ["ServiceStore"]
