"""``staging bench studio``: from a product photo to the Studio grid of every mode, timed as a
user meets it in the app.

The app opens the segmentation model and the catalog index while it starts (its warm-up), so
both are opened here before the clock runs. Then, per photo: the upload (``engine.segment``,
the mask the app makes as soon as a photo is loaded) and the grid
(``engine.stage_candidates`` with that mask: copy-paste × k, vanilla, prompt), each timed on
its own photo, the first one included: its scenes and plates are cold, as for a new user.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def bench_studio(engine: Any, photos: Sequence[str | Path], index: str | Path, k: int = 3) -> dict:
    """Seconds per photo for the mask and the grid, their sum, and the modes each grid held."""
    engine.index(index)
    engine.segment(np.full((64, 64, 3), 255, np.uint8))  # the warm-up's model load
    rows = []
    for photo in photos:
        started = time.perf_counter()
        segmentation = engine.segment(photo)
        masked = time.perf_counter()
        found = engine.stage_candidates(photo, k=k, index=index, mask=segmentation.alpha)
        done = time.perf_counter()
        rows.append(
            {
                "photo": Path(photo).name,
                "segment_backend": segmentation.backend,
                "mask_seconds": round(masked - started, 2),
                "grid_seconds": round(done - masked, 2),
                "total_seconds": round(done - started, 2),
                "results": {
                    mode: sum(r.mode == mode for r in found.results) for mode in found.modes
                },
                "skipped": found.skipped,
            }
        )
    totals = [row["total_seconds"] for row in rows]
    return {
        "photos": len(rows),
        "k": k,
        "median_total_seconds": round(statistics.median(totals), 2) if totals else None,
        "max_total_seconds": max(totals, default=None),
        "rows": rows,
    }
