"""``staging batch``, ``staging serve`` and ``staging worker``: a whole catalog offline, and the
creative service with the workers that fill its queue."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from staging.cli.base import FORMAT, SUMMARY_JSON, app, echo_json, make_engine, split_placements
from staging.errors import StagingError


@app.command("batch")
def batch_command(
    source: Path = typer.Argument(..., help="Folder of product photos, or a CSV (id,image,...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (with manifest.sqlite)."),
    modes: str = typer.Option("copy-paste", help="Comma-separated: copy-paste,vanilla,prompt."),
    placements: list[str] = typer.Option(
        None,
        help="Generated modes: square, portrait, story, leaderboard, WxH; repeat or comma-"
        "separate (default square).",
    ),
    index: Path = typer.Option(None, "--index", "-i", help="Catalog index (copy-paste)."),
    k: int = typer.Option(3, "-k", help="Copy-paste candidates per product."),
    workers: int = typer.Option(1, help="Units staged at once (threads sharing the models)."),
    fmt: str = FORMAT,
    engine_kind: str = typer.Option(
        "local", "--engine", help="local (threads here) or ray (a Ray Data pipeline)."
    ),
    address: str = typer.Option(
        None, help="--engine ray: the cluster to join (default: start a local one)."
    ),
    gpus: float = typer.Option(0.0, help="--engine ray: GPUs per worker actor."),
    as_json: bool = SUMMARY_JSON,
) -> None:
    """Stage a whole catalog: one file per product x mode x placement (x candidate), a
    manifest (SQLite) of every output; re-running skips what is done, a killed run resumes.
    With --engine ray, --workers actors (each with its own engine) on a Ray cluster."""
    from staging.batch import run_batch

    summary = run_batch(
        make_engine(), source, out, modes=modes.split(","),
        placements=split_placements(placements), index=index, k=k, workers=workers, fmt=fmt,
        progress=not as_json, engine_kind=engine_kind, address=address, num_gpus=gpus,
    )  # fmt: skip
    if as_json:
        echo_json(summary.as_dict())
    else:
        rate = summary.done / summary.seconds if summary.seconds else 0.0
        typer.echo(
            f"{summary.done} units staged ({summary.outputs} files), {summary.skipped} already "
            f"done, {len(summary.failed)} failed, in {summary.seconds:.1f} s ({rate:.2f} units/s); "
            f"manifest: {summary.out / 'manifest.sqlite'}"
        )
        for product_id, mode, error in summary.failed:
            typer.echo(f"failed {product_id} ({mode}): {error}", err=True)
    if summary.failed:
        raise typer.Exit(1)


DB_HELP = (
    "Metadata and queue in this PostgreSQL database (postgresql://user@host/db) instead of "
    "<root>/service.sqlite; the service and every worker name the same one."
)
QUEUE_HELP = (
    "The queue's order in Redis (redis://host:6379/0): newest job first in one round trip; the "
    "jobs themselves stay in the database."
)
STORAGE_HELP = (
    "Product photos and creatives at this fsspec URL (s3://bucket/prefix; endpoint and keys "
    "from AWS_* variables) instead of under --root; the service and every worker name the "
    "same one."
)


@app.command("serve")
def serve_command(
    root: Path = typer.Option(Path("staging-service"), help="The service's data folder."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    database: str = typer.Option(None, "--db", help=DB_HELP),
    storage: str = typer.Option(None, help=STORAGE_HELP),
    queue: str = typer.Option(None, help=QUEUE_HELP),
    api_key_file: Path = typer.Option(
        None,
        envvar="STAGING_API_KEY_FILE",
        help="File holding the API key that POST /v1/products and /v1/feedback then ask for "
        "(Authorization: Bearer KEY or X-API-Key: KEY); or the key itself in STAGING_API_KEY. "
        "Without either, anyone who reaches the port may write.",
    ),
) -> None:
    """The creative service (FastAPI): /v1/products, /v1/creative/{id}, /v1/jobs/{id},
    /v1/feedback, /healthz, /metrics. Run `staging worker` beside it."""
    import logging

    import uvicorn

    from staging.service.api import WRITES, api_key_from, create_service

    try:
        api_key = api_key_from(api_key_file)
    except StagingError as exc:  # before anything starts: one line, no traceback
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    service = create_service(make_engine(), root, database=database, storage=storage, queue=queue,
                             api_key=api_key)  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(service, host=host, port=port))  # sets up its logs
    log = logging.getLogger("uvicorn.error")
    if api_key is None:
        log.warning("Write endpoints open (%s): no --api-key-file or STAGING_API_KEY; anyone "
                    "who reaches %s:%s may write.", ", ".join(WRITES), host, port)  # fmt: skip
    else:
        log.info("Write endpoints (%s) need the API key.", ", ".join(WRITES))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn.run's, with the line logged above
        server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's startup failure (e.g. the port is taken)


@app.command("worker")
def worker_command(
    root: Path = typer.Option(Path("staging-service"), help="The service's data folder."),
    once: bool = typer.Option(False, help="Stop when the queue is empty."),
    poll: float = typer.Option(1.0, help="Seconds between looks at an empty queue."),
    lease: float = typer.Option(
        300.0, help="Seconds a job stays this worker's; if it dies, another takes it after."
    ),
    database: str = typer.Option(None, "--db", help=DB_HELP),
    storage: str = typer.Option(None, help=STORAGE_HELP),
    queue: str = typer.Option(None, help=QUEUE_HELP),
) -> None:
    """Generate the creatives the service queued, newest first."""
    from staging.service.worker import run_worker

    done = run_worker(make_engine(), root, once=once, poll=poll, lease=lease, database=database,
                      storage=storage, queue=queue)  # fmt: skip
    typer.echo(f"{done} creatives generated")
