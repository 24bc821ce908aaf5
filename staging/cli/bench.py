"""``staging bench``: speed benchmarks. The commands run a benchmark and hand its report to a
table of ``staging.cli.tables`` (or the generic ``print_report``)."""

from __future__ import annotations

from pathlib import Path

import typer

from staging.cli.base import (
    ALIGN,
    AS_JSON,
    FILL,
    INPAINT,
    INPUTS,
    MARGIN,
    bench_app,
    expand_inputs,
    make_engine,
    print_report,
    split_placements,
)
from staging.cli.tables import (
    bandit_table,
    parallax_table,
    print_table,
    retrieval_table,
    studio_table,
)


@bench_app.command("segment")
def bench_segment(
    backends: str = typer.Option(None, help="Comma-separated names (default: all available)."),
    sizes: str = typer.Option("512,1024", help="Square sizes to time."),
    repeat: int = typer.Option(10, help="Timed runs per size (after one warm-up)."),
    photos: str = typer.Option(
        None,
        help="Also time a big photo end to end (segment + full-size cut-out, the default "
        "backend) at these square sizes, e.g. 4000,6000.",
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Latency per available backend at 512x512 and 1024x1024."""
    from staging.evaluate.segmentation import bench_big_photos, bench_segmentation

    names = [b.strip() for b in backends.split(",")] if backends else None
    sizes_px = [int(s) for s in sizes.split(",")]
    engine = make_engine()
    report = bench_segmentation(engine, names, sizes_px, repeat=repeat)
    if photos:
        report["big_photos"] = bench_big_photos(engine, [int(s) for s in photos.split(",")])
    print_report(report, as_json)


@bench_app.command("retrieval")
def bench_retrieval(
    n: int = typer.Option(1_000_000, "--n", help="Database vectors."),
    dim: int = typer.Option(512, help="Dimensions."),
    queries: int = typer.Option(1000, help="Query vectors."),
    k: int = typer.Option(10, "-k", "--k", help="Neighbours per query."),
    kinds: str = typer.Option("exact,hnsw", help="Comma-separated: exact, hnsw, hnsw_sq."),
    m: int = typer.Option(None, "--m", help="HNSW M (links per node)."),
    ef_construction: int = typer.Option(None, help="HNSW efConstruction."),
    ef_search: str = typer.Option(None, help="HNSW efSearch value(s), comma-separated."),
    clusters: int = typer.Option(1000, help="Gaussian cluster centres of the synthetic data."),
    query_threads: int = typer.Option(1, help="Threads per single query."),
    seed: int = typer.Option(0, help="Random seed."),
    as_json: bool = AS_JSON,
) -> None:
    """Exact vs HNSW search on synthetic clustered unit vectors: build time, memory,
    p50/p99 single-query latency and recall@k against exact search."""
    from staging.catalog import index as catalog_index
    from staging.catalog.bench import bench_retrieval as run

    efs = tuple(int(v) for v in ef_search.split(",")) if ef_search else None
    report = run(
        n=n,
        dim=dim,
        queries=queries,
        k=k,
        kinds=tuple(x.strip() for x in kinds.split(",") if x.strip()),
        m=m or catalog_index.HNSW_M,
        ef_construction=ef_construction or catalog_index.HNSW_EF_CONSTRUCTION,
        ef_search=efs or (catalog_index.HNSW_EF_SEARCH,),
        clusters=clusters,
        query_threads=query_threads,
        seed=seed,
        progress=not as_json,
    )
    print_table(report, as_json, retrieval_table)


@bench_app.command("copy-paste")
def bench_copy_paste_command(
    inputs: list[Path] = INPUTS,
    index: Path = typer.Option(..., "--index", "-i", help="Catalog index folder."),
    k: int = typer.Option(3, "-k", help="Candidates per product."),
    limit: int = typer.Option(20, help="At most this many products."),
    inpaint_backend: str = INPAINT,
    as_json: bool = AS_JSON,
) -> None:
    """Seconds per copy-paste candidate end to end, cold (scene not yet inpainted) and warm."""
    from staging.evaluate.bench_copy_paste import bench_copy_paste
    from staging.io import list_images

    files = expand_inputs(inputs, list_images)[:limit]
    report = bench_copy_paste(make_engine(), index, files, k=k, inpaint_backend=inpaint_backend)
    print_report(report, as_json)


@bench_app.command("serve")
def bench_serve_command(
    inputs: list[Path] = INPUTS,
    placements: list[str] = typer.Option(
        None,
        help="Placements requested (default 300x250,728x90,1080x1080); repeat or comma-separate.",
    ),
    clients: int = typer.Option(50, help="Concurrent clients (kept-alive connections)."),
    rate: float = typer.Option(200.0, help="Requests/s over all clients, cold and warm."),
    seconds: float = typer.Option(10.0, help="Seconds per phase."),
    limit: int = typer.Option(10, help="At most this many products."),
    as_json: bool = AS_JSON,
) -> None:
    """The creative service under concurrent clients: cold (fallbacks), warm (cache) at
    --rate, then its capacity (clients sending back to back)."""
    import tempfile

    from staging.evaluate.bench_serve import bench_serve
    from staging.io import list_images

    files = expand_inputs(inputs, list_images)[:limit]
    sizes = split_placements(placements) or ["300x250", "728x90", "1080x1080"]
    with tempfile.TemporaryDirectory(prefix="staging-bench-serve-") as root:
        report = bench_serve(make_engine(), files, Path(root), sizes, clients, rate, seconds)
    print_report(report, as_json)


@bench_app.command("studio")
def bench_studio_command(
    photos: list[Path] = typer.Argument(..., help="Product photos, timed one after another."),
    index: Path = typer.Option(..., "--index", "-i", help="Catalog index folder (copy-paste)."),
    k: int = typer.Option(3, "-k", help="Copy-paste candidates."),
    as_json: bool = AS_JSON,
) -> None:
    """From a photo to the Studio grid: the mask, then every mode (copy-paste x k, vanilla,
    prompt), seconds per photo with the model and the index opened first, as the app does."""
    from staging.evaluate.bench_studio import bench_studio

    report = bench_studio(make_engine(), [str(p) for p in photos], index, k=k)
    print_table(report, as_json, studio_table)


@bench_app.command("parallax")
def bench_parallax_command(
    sizes: str = typer.Option("720,1080", help="Square sizes to time."),
    seconds: float = typer.Option(3.0, help="Clip length per size."),
    fps: float = typer.Option(30.0, help="Frames per second of the clip."),
    motion: str = typer.Option("orbit", help="pan, zoom or orbit."),
    inpaint_backend: str = INPAINT,
    as_json: bool = AS_JSON,
) -> None:
    """Parallax frames per second, render only and render + H.264 encode, at 720² and 1080²."""
    from staging.evaluate.bench_parallax import bench_parallax

    report = bench_parallax(
        make_engine().inpainter(inpaint_backend),
        sizes=tuple(int(s) for s in sizes.split(",")),
        seconds=seconds,
        fps=fps,
        motion=motion,
    )
    print_table(report, as_json, parallax_table)


@bench_app.command("buckets")
def bench_buckets_command(
    products: int = typer.Option(1000, help="Synthetic products (aspect 1:4 to 4:1)."),
    sizes: str = typer.Option(None, help="Comma-separated placements (default: 10 standard)."),
    r: float = typer.Option(1.2, "--r", help="Bucket increment ratio (seed: 1.2)."),
    fill: float = FILL,
    align: str = ALIGN,
    margin: float = MARGIN,
    merge: float = typer.Option(1.5, help="Max canvas growth when a bucket serves another."),
    variants: int = typer.Option(100, help="Near-duplicate siblings per size (0: skip)."),
    as_json: bool = AS_JSON,
) -> None:
    """Background generations for N products x ad sizes, with and without buckets."""
    from staging.compose.placement import STANDARD_SIZES
    from staging.evaluate.bench_buckets import bench_buckets

    names = [s.strip() for s in sizes.split(",") if s.strip()] if sizes else STANDARD_SIZES
    report = bench_buckets(
        products=products,
        sizes=names,
        r=r,
        fill=fill,
        align=align,
        margin=margin,
        merge=merge,
        variants=variants,
    )
    print_report(report, as_json)


@bench_app.command("bandit")
def bench_bandit_command(
    rounds: int = typer.Option(5000, help="Simulated ad requests per run."),
    seed: int = typer.Option(0, help="Seed of the simulated worlds."),
    repeats: int = typer.Option(3, help="Simulated worlds (seeds seed, seed+1, ...) averaged."),
    alpha: float = typer.Option(None, help="LinUCB exploration weight (default 0.25)."),
    epsilon: float = typer.Option(0.1, help="Exploration rate of epsilon-greedy."),
    as_json: bool = AS_JSON,
) -> None:
    """Click simulator: cumulative regret of LinUCB vs epsilon-greedy vs random theme choice."""
    from staging.evaluate.bench_bandit import bench_bandit
    from staging.generate.bandit import DEFAULT_ALPHA

    report = bench_bandit(
        rounds=rounds,
        seed=seed,
        repeats=repeats,
        alpha=DEFAULT_ALPHA if alpha is None else alpha,
        epsilon=epsilon,
    )
    print_table(report, as_json, bandit_table)
