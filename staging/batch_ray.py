"""``staging batch --engine ray``: the same units as the local engine, run as a Ray Data
pipeline on a cluster (``pip install 'ray[data]'``).

The products flow through ``map_batches`` into a pool of actors; each actor holds one engine
(built from the driver's settings, so its models load once per actor) and stages one unit at a
time, writing the unit's files itself. The outcomes stream back to the driver, which alone
writes the manifest, exactly as with threads: the same files, the same rows, the same
resuming. On a cluster the output folder (and the models folder) must be one that every node
sees; ``num_gpus`` gives each actor a share of a GPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from staging.batch_unit import BatchRun, Outcome, Product, failure_message, stage_unit
from staging.errors import StagingError


class UnitStager:
    """A Ray Data actor: one engine (of the driver's engine class and settings), one unit per
    call. The class is handed over, not imported, so this module does not import the engine."""

    def __init__(self, engine_type, settings, job: BatchRun):
        self.engine = engine_type(settings)
        self.job = job

    def __call__(self, batch: dict) -> dict:
        rows = {"n": [], "outputs": [], "seconds": [], "error": []}
        for n, product, mode in zip(batch["n"], batch["product"], batch["mode"], strict=True):
            fields = json.loads(product)
            try:
                outputs, seconds = stage_unit(
                    self.engine,
                    self.job,
                    Product(**fields | {"image": Path(fields["image"])}),
                    mode,
                )
                error = None
            except Exception as exc:  # noqa: BLE001 - recorded as the unit's error
                outputs, seconds, error = [], 0.0, failure_message(exc)
            rows["n"].append(int(n))
            rows["outputs"].append(json.dumps(outputs))
            rows["seconds"].append(seconds)
            rows["error"].append(error or "")
        return rows


def ray_runner(address: str | None = None, num_gpus: float = 0.0):
    """A runner for ``staging.batch.run_batch``: connects to the Ray cluster at
    ``address`` (None: starts a local one) and yields outcomes as the actors finish them."""
    try:
        import ray
    except ImportError as exc:
        raise StagingError("--engine ray needs Ray: pip install 'ray[data]'") from exc

    def run(
        engine, job: BatchRun, todo: list[tuple[Product, str]], workers: int
    ) -> Iterator[Outcome]:
        if not todo:
            return
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)  # fmt: skip
        items = [
            {"n": n, "product": json.dumps(asdict(p) | {"image": str(p.image)}), "mode": mode}
            for n, (p, mode) in enumerate(todo)
        ]
        stagers = ray.data.from_items(items).map_batches(
            UnitStager,
            fn_constructor_kwargs={
                "engine_type": type(engine),
                "settings": engine.settings,
                "job": job,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=num_gpus or None,
        )
        for row in stagers.iter_rows():
            product, mode = todo[row["n"]]
            yield product, mode, json.loads(row["outputs"]), row["seconds"], row["error"] or None

    return run
