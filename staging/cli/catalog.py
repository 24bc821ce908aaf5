"""``staging index`` and ``staging search``: build a catalog index incrementally and query it
with a product photo."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from staging.cli.base import AS_JSON, REPORT_JSON, app, json_or_skipped, make_engine


@app.command("index")
def index_catalog(
    catalog: Path = typer.Argument(..., help="Folder of catalog images (searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder (created if needed)."),
    csv_file: Path = typer.Option(
        None, "--csv", help="id,image,category,title,... CSV (default: the previous run's)."
    ),
    embedder: str = typer.Option(None, help="Embedder (default: the index's, else handcrafted)."),
    category_column: str = typer.Option(None, help="CSV column used as category."),
    rebuild: bool = typer.Option(False, help="Delete the existing index first."),
    workers: int = typer.Option(None, help="Worker threads (default: up to 4)."),
    as_json: bool = REPORT_JSON,
) -> None:
    """Index a catalog: staged flag, product mask and embedding per image, for `search`.

    Re-running adds new or changed images and drops deleted ones; a killed run resumes.
    """
    from staging.catalog import CatalogIndex

    engine = make_engine()
    index = CatalogIndex.open(out, create=True, rebuild=rebuild)
    report = engine.update_index(
        index,
        catalog,
        csv=csv_file,
        embedder=embedder,
        progress=not as_json,
        category_column=category_column,
        workers=workers,
    )
    if json_or_skipped(report, as_json):
        return
    typer.echo(
        f"{report.added} added, {report.changed} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged, {len(report.failed)} failed; {report.total} items in "
        f"{report.index} (embedder {report.embedder}, {report.dim}-d)"
    )
    if report.processed:
        typer.echo(
            f"{report.processed} images in {report.processing_seconds:.1f} s: "
            f"{report.images_per_second:.1f} images/s"
        )
    typer.echo(engine.scene_parser_status().replace("`", ""))


@app.command("search")
def search(
    image: Path = typer.Argument(..., help="Query image (its product is segmented first)."),
    index: Path = typer.Option(..., "--index", help="Index folder built by `staging index`."),
    k: int = typer.Option(5, "-k", "--k", help="Number of results."),
    category: str = typer.Option(None, help="Only this category."),
    all_items: bool = typer.Option(
        False, "--all", help="Search every item, not only staged images."
    ),
    index_type: str = typer.Option(None, help="auto, exact or hnsw (default: auto)."),
    embedder: str = typer.Option(None, help="Must match the index's embedder if given."),
    as_json: bool = AS_JSON,
) -> None:
    """The k catalog images whose product looks most like the query's (cosine similarity)."""
    engine = make_engine()
    catalog = engine.index(index)
    hits = engine.search(
        image,
        k=k,
        index=catalog,
        staged_only=not all_items,
        category=category,
        index_type=index_type,
        embedder=embedder,
    )
    if as_json:
        rows = [
            {
                "rank": rank,
                "id": h.id,
                "score": round(h.score, 6),
                "staged": h.staged,
                "category": h.category,
                "title": h.title,
                "path": str(h.path),
                "mask": str(h.mask) if h.mask else None,
                "metadata": h.metadata,
            }
            for rank, h in enumerate(hits, 1)
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not hits:
        stats = catalog.stats()
        hint = ""
        if not all_items and stats["staged"] == 0:
            hint = " (the index has no staged images: pass --all to search every item)"
        typer.echo(f"no results{hint}")
        return
    typer.echo(f"{'#':>3} {'score':>6}  {'staged':6} {'category':16} {'id':16} path")
    for rank, h in enumerate(hits, 1):
        staged = "yes" if h.staged else "no"
        cat = (h.category or "-")[:16]
        typer.echo(f"{rank:>3} {h.score:6.3f}  {staged:6} {cat:16} {h.id[:16]:16} {h.path}")
