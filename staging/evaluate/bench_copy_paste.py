"""``staging bench copy-paste``: seconds per copy-paste candidate, end to end.

For each product image: segment, embed, retrieve, remove the old product and inpaint its
scene, paste, shadow — everything a user waits for. Two figures per product:

* **cold**: no clean plate cached (the first product staged into those scenes); the target
  "one candidate ≤ 1 s on this CPU" is about this one;
* **warm**: the same product again with plates cached (batch staging of a catalog into the
  same scenes);
* **restage**: one hand adjustment of a result (:meth:`StagingEngine.stage_in_scene`, the
  product moved and resized in its scene with the object removed), reusing the cached cut-out,
  scene analysis and clean plate; the target is 0.3 s.

Models are loaded by one untimed warm-up call first, as in a running app.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # handed one by the CLI; not imported, so no circle through the engine
    from staging.engine import StagingEngine


def bench_copy_paste(
    engine: StagingEngine,
    index: str | os.PathLike,
    images: list[Path],
    k: int = 3,
    inpaint_backend: str | None = None,
) -> dict:
    """Per-candidate seconds, cold and warm, over ``images`` staged into ``index``."""
    if not images:
        raise ValueError("bench copy-paste needs at least one product image")
    engine.stage_copy_paste(images[0], k=1, index=index, inpaint_backend=inpaint_backend)
    cold, warm, restage, sizes = [], [], [], []
    for path in images:
        engine.scenes.plates.clear()  # a cold start for the scenes, models stay loaded
        t0 = time.perf_counter()
        results = engine.stage_copy_paste(path, k=k, index=index, inpaint_backend=inpaint_backend)
        cold.append((time.perf_counter() - t0) / len(results))
        t0 = time.perf_counter()
        engine.stage_copy_paste(path, k=k, index=index, inpaint_backend=inpaint_backend)
        warm.append((time.perf_counter() - t0) / len(results))
        sizes.extend(f"{r.image.shape[1]}x{r.image.shape[0]}" for r in results)
        for result in results:
            x, y = result.source["feet"]
            options = dict(
                scene_mask=result.source["mask"], box=result.source.get("box"),
                object_size=result.source.get("object_size"), inpaint_backend=inpaint_backend,
                remove=True,
            )  # fmt: skip
            engine.stage_in_scene(path, result.source["path"], **options)  # plate cached
            t0 = time.perf_counter()
            engine.stage_in_scene(path, result.source["path"], position=(x - 5, y), scale=0.9,
                                  **options)  # fmt: skip
            restage.append(time.perf_counter() - t0)

    def summary(values: list[float]) -> dict:
        ordered = sorted(values)
        return {
            "mean_s": round(statistics.fmean(values), 3),
            "p50_s": round(statistics.median(values), 3),
            "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
            "max_s": round(ordered[-1], 3),
        }

    return {
        "products": len(images),
        "k": k,
        "inpainter": engine.resolve_inpaint_backend(inpaint_backend),
        "scene_sizes": sorted(set(sizes)),
        "cpus": os.cpu_count(),
        "cold_per_candidate": summary(cold),
        "warm_per_candidate": summary(warm),
        "restage": summary(restage),
    }
