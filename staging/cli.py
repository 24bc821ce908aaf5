"""The ``staging`` command line: the same engine calls as the app and the Python API.

Global options (``--device``, ``--models-dir``, ``--offline``) go before the command and
override ``STAGING_*`` environment variables. Errors meant for users print as one readable
message (exit code 2), never as a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from tqdm import tqdm

from staging.errors import StagingError

app = typer.Typer(
    help="Product Staging Studio: turn catalog product photos into staged ad images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, download and locate pretrained models.", no_args_is_help=True)
eval_app = typer.Typer(help="Quality metrics on labelled data.", no_args_is_help=True)
bench_app = typer.Typer(help="Speed benchmarks.", no_args_is_help=True)
stage_app = typer.Typer(
    help="Stage products: copy-paste (retrieval), vanilla and prompt-based.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(stage_app, name="stage")
train_app = typer.Typer(help="Train the seeds' models on your own catalog.", no_args_is_help=True)
app.add_typer(train_app, name="train")

_overrides: dict = {}


@app.callback()
def _global_options(
    device: str = typer.Option(None, help="auto, cpu, cuda[:N] or mps (STAGING_DEVICE)."),
    models_dir: str = typer.Option(None, help="Models folder(s) (STAGING_MODELS_DIR)."),
    offline: bool = typer.Option(None, "--offline/--online", help="Forbid downloads."),
    lora: str = typer.Option(
        None, help="LoRA folder for the diffusion generators (STAGING_LORA; staging train)."
    ),
) -> None:
    _overrides.clear()  # one invocation's flags never leak into the next (tests, REPLs)
    given = {"device": device, "models_dir": models_dir, "offline": offline, "lora": lora}
    for key, value in given.items():
        if value is not None:
            _overrides[key] = value


def _engine():
    from staging.engine import StagingEngine

    return StagingEngine(**_overrides)


# -- models -------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(
    verify: bool = typer.Option(False, help="Also check the checksums of present files."),
) -> None:
    """Every registered model: task, size, licence, whether it is on disk, and its sources
    (tried in order by `staging models pull`) with each source's licence."""
    from staging.models import REGISTRY

    engine = _engine()
    typer.echo(f"models directories: {', '.join(str(d) for d in engine.store.dirs)}")
    width = max(len("licence"), *(len(spec.licence) for spec in REGISTRY.values()))
    typer.echo(f"{'name':24} {'task':9} {'MB':>7}  {'licence':{width}} status")
    for name, spec in REGISTRY.items():
        status = engine.store.status(name, verify=verify)
        state = f"present {status.path}" if status.present else "missing"
        if status.checksum_ok is False:
            state += " (checksum differs from the registry's file: another build?)"
        elif status.checksum_ok:
            state += " (checksum ok)"
        typer.echo(f"{name:24} {spec.task:9} {spec.size_mb:7.1f}  {spec.licence:{width}} {state}")
        for source in spec.sources:
            typer.echo(f"{'':36}from {source.describe()} [{spec.source_licence(source)}]")


@models_app.command("pull")
def models_pull(
    names: list[str] = typer.Argument(..., help="Model names (see `staging models list`)."),
    force: bool = typer.Option(False, help="Download again even when present."),
) -> None:
    """Fetch models into the first models directory: each source in turn, checksum verified."""
    engine = _engine()
    for name in names:
        path = engine.store.pull(name, force=force)
        typer.echo(f"{name}: {path}")


@models_app.command("path")
def models_path(name: str) -> None:
    """Print where a model's files are (exit 2 with instructions when missing)."""
    engine = _engine()
    typer.echo(str(engine.store.path(name)))


# -- segmentation -------------------------------------------------------------------------------
@app.command("segment")
def segment(
    inputs: list[Path] = typer.Argument(..., help="Images or folders of images."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    backend: str = typer.Option(None, help="Backend name (default: auto)."),
    threshold: float = typer.Option(None, help="Mask threshold (default 0.5)."),
    save_prob: bool = typer.Option(False, help="Also write the probability map."),
) -> None:
    """Write <name>.mask.png and <name>.cutout.png (RGBA) for each image."""
    from staging.io import list_images, save_mask

    engine = _engine()
    files = _expand(inputs, list_images)
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    used: set[str] = set()
    for path in tqdm(files, desc="segment", unit="img", disable=len(files) < 2):
        try:
            seg = engine.segment(path, backend=backend, threshold=threshold)
        except StagingError as exc:
            failures.append(f"{path}: {exc}")
            continue
        save_mask(out / f"{path.stem}.mask.png", seg.mask)
        seg.cutout.save(out / f"{path.stem}.cutout.png")
        if save_prob:
            save_mask(out / f"{path.stem}.prob.png", seg.prob)
        used.add(seg.backend)
    typer.echo(
        f"{len(files) - len(failures)} of {len(files)} images segmented into {out} "
        f"(backend: {', '.join(sorted(used)) or '-'}, device: {engine.device})"
    )
    if failures:
        typer.echo("failed:\n  " + "\n  ".join(failures), err=True)
        raise typer.Exit(1)


@app.command("is-staged")
def is_staged(inputs: list[Path] = typer.Argument(..., help="Images or folders.")) -> None:
    """Tell staged (product in a scene) from un-staged (plain background) images."""
    from staging.io import list_images

    engine = _engine()
    for path in _expand(inputs, list_images):
        try:
            verdict = engine.is_staged(path)
        except StagingError as exc:
            typer.echo(f"{path}\terror: {exc}")
            continue
        label = "staged" if verdict.staged else "unstaged"
        typer.echo(f"{path}\t{label}\tconfidence {verdict.confidence:.2f}")


def _expand(inputs: list[Path], list_images) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(list_images(item))
        else:
            files.append(item)
    if not files:
        raise StagingError("No images found in the given inputs.")
    return files


# -- catalog index and retrieval ----------------------------------------------------------------
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
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index a catalog: staged flag, product mask and embedding per image, for `search`.

    Re-running adds new or changed images and drops deleted ones; a killed run resumes.
    """
    from staging.catalog import CatalogIndex

    engine = _engine()
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
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    for path, reason in report.failed:
        typer.echo(f"skipped {path}: {reason}", err=True)
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
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The k catalog images whose product looks most like the query's (cosine similarity)."""
    engine = _engine()
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


# -- evaluation and benchmarks ------------------------------------------------------------------
@eval_app.command("segment")
def eval_segment(
    images: Path = typer.Option(..., help="Folder of images."),
    masks: Path = typer.Option(..., help="Folder of ground-truth masks (same file stems)."),
    backend: str = typer.Option(None, help="Backend name (default: auto)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int = typer.Option(0, help="Use only the first N images (0: all)."),
    compare_plain: bool = typer.Option(
        False,
        "--compare-plain",
        help="Also run a plain ONNX Runtime session of the same file (the network alone) and "
        "list per-image IoU side by side, with the 10 images where ours loses most.",
    ),
) -> None:
    """Mean IoU, MAE, F-beta (beta^2=0.3), boundary F and seconds per image."""
    from staging.evaluate.segmentation import evaluate_segmentation

    report = evaluate_segmentation(
        _engine(),
        images,
        masks,
        backend=backend,
        limit=limit,
        compare_plain=compare_plain,
        progress=not as_json,
    )
    _print_report(report, as_json)


@eval_app.command("retrieval")
def eval_retrieval(
    csv_file: Path = typer.Option(..., "--csv", help="CSV with an image column and labels."),
    root: Path = typer.Option(None, help="Folder image paths are relative to (default: CSV's)."),
    label: str = typer.Option("type", help="Label column: same label = relevant."),
    min_count: int = typer.Option(10, help="Only labels with at least this many images."),
    embedder: str = typer.Option(None, help="Embedder name (default: handcrafted)."),
    masks: str = typer.Option("catalog", help="Segmentation backend for product masks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Leave-one-out retrieval P@1/3/5 and R@1/3/5 (the paper's Table 1 metrics)."""
    from staging.evaluate.retrieval import evaluate_retrieval

    report = evaluate_retrieval(
        _engine(),
        csv_file,
        root=root,
        label=label,
        min_count=min_count,
        embedder=embedder,
        progress=not as_json,
        masks=masks,
    )
    _print_report(report, as_json)


@eval_app.command("inpaint")
def eval_inpaint(
    images: Path = typer.Option(..., help="Folder of room photos (their pixels are the truth)."),
    backend: str = typer.Option(None, help="Backend name (default: structure)."),
    products: Path = typer.Option(
        None,
        help="Product shots on white whose silhouettes make the holes (default: a 'products' "
        "folder beside the images, else procedural shapes).",
    ),
    reference: str = typer.Option(
        "telea", help="Backend run on the same holes for comparison ('none' to skip)."
    ),
    width: int = typer.Option(512, help="Rooms are resized to this width first."),
    seed: int = typer.Option(0, help="Seed of the hole shapes and positions."),
    limit: int = typer.Option(0, help="Use only the first N images (0: all)."),
    save: Path = typer.Option(None, help="Save each room with its hole and the result here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Product-shaped holes in room photos: hole PSNR, SSIM over the hole's box, boundary-
    weighted L1 (0.9/0.1, the paper's WBL weights) and seconds per image, beside Telea."""
    from staging.evaluate.inpaint import evaluate_inpainting

    report = evaluate_inpainting(
        _engine(),
        images,
        backend=backend,
        products=products,
        width=width,
        seed=seed,
        limit=limit,
        reference=None if reference.lower() == "none" else reference,
        save_dir=save,
        progress=not as_json,
    )
    _print_report(report, as_json)


@eval_app.command("realism")
def eval_realism(
    real: Path = typer.Option(..., help="Folder of real photos (the reference)."),
    generated: Path = typer.Option(..., help="Folder of generated images."),
    features: str = typer.Option(
        "mobilenet_v2", help="mobilenet_v2 (weights here), or inception (FID's network)."
    ),
    subsets: int = typer.Option(100, help="KID: random subsets averaged."),
    subset_size: int = typer.Option(1000, help="KID: images per subset (capped at the sets)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """How real generated images look: KID x1000 (mean, std over subsets) and the Frechet
    distance of deep features against real photos (FID with --features inception)."""
    from staging.evaluate.realism import feature_fn, load_folder, realism

    extract = feature_fn(features, _engine().runtime.store)
    report = realism(load_folder(real), load_folder(generated), extract, subsets, subset_size)
    report["features"] = features
    _print_report(report, as_json)


@eval_app.command("copy-paste")
def eval_copy_paste(
    products: Path = typer.Option(..., help="CSV of products: image, and id/type/size if known."),
    scenes: Path = typer.Option(..., help="Folder of staged scenes to index and stage into."),
    reference: Path = typer.Option(..., help="Folder of real rooms the index never sees."),
    out: Path = typer.Option(..., help="Results, contact sheets, index and report.json."),
    k: int = typer.Option(3, "-k", help="Results per product."),
    inpaint_backend: str = typer.Option(
        None, help="Fill of replaced objects (default: auto, the best on disk)."
    ),
    features: str = typer.Option("mobilenet_v2", help="Realism features (see eval realism)."),
    limit: int = typer.Option(0, help="Use only the first N products (0: all)."),
    bare: bool = typer.Option(
        False, "--bare", help="Withhold the CSV's type and size, as an upload has none."
    ),
    csv: Path = typer.Option(
        None, help="Catalog CSV of the scenes folder (masks; product shots' type and size)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stage every product into its k best scenes; write every result, contact sheets and the
    realism (KID, FD) against the reference beside real-vs-real and naive-paste anchors."""
    from staging.evaluate.copy_paste import evaluate_copy_paste
    from staging.evaluate.realism import feature_fn

    engine = _engine()
    report = evaluate_copy_paste(
        engine, products, scenes, reference, out, feature_fn(features, engine.runtime.store),
        k=k, limit=limit, progress=not as_json, inpaint_backend=inpaint_backend, bare=bare,
        csv=csv,
    )  # fmt: skip
    _print_report(report, as_json)


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
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Latency per available backend at 512x512 and 1024x1024."""
    from staging.evaluate.segmentation import bench_big_photos, bench_segmentation

    names = [b.strip() for b in backends.split(",")] if backends else None
    sizes_px = [int(s) for s in sizes.split(",")]
    engine = _engine()
    report = bench_segmentation(engine, names, sizes_px, repeat=repeat)
    if photos:
        report["big_photos"] = bench_big_photos(engine, [int(s) for s in photos.split(",")])
    _print_report(report, as_json)


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
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
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
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['n']} x {report['dim']}-d, {report['queries']} queries, k={report['k']}, "
        f"{report['clusters']} clusters; build on {report['build_threads']} threads, "
        f"queries on {report['query_threads']}"
    )
    recall = f"recall@{report['k']}"
    typer.echo(
        f"{'index':8} {'M':>3} {'efC':>4} {'efS':>4} {'build s':>8} {'index MiB':>9} "
        f"{'RSS MiB':>8} {'p50 ms':>7} {'p99 ms':>7} {recall:>9}"
    )
    for r in report["results"]:
        typer.echo(
            f"{r['index']:8} {r['M'] or '-':>3} {r['efConstruction'] or '-':>4} "
            f"{r['efSearch'] or '-':>4} {r['build_seconds']:8.1f} "
            f"{r['index_bytes'] / 2**20:9.0f} {r['rss_bytes'] / 2**20:8.0f} "
            f"{r['p50_ms']:7.3f} {r['p99_ms']:7.3f} {r[recall]:9.4f}"
        )


@app.command("parallax")
def parallax_command(
    image: Path = typer.Argument(..., help="Product photo."),
    out: Path = typer.Option(..., "--out", "-o", help="Video file: .mp4, .webm or .gif."),
    mask: Path = typer.Option(None, help="Product mask image (default: segment the photo)."),
    motion: str = typer.Option("pan", help="pan, zoom or orbit."),
    size: str = typer.Option(None, help="WxH (1080x1350) or 1:1, 4:5, 9:16, 16:9."),
    seconds: float = typer.Option(3.0, help="Clip length."),
    fps: float = typer.Option(30.0, help="Frames per second."),
    strength: float = typer.Option(None, help="Product shift, share of the short side (0.04)."),
    fit: str = typer.Option("auto", help="cover (crop), pad (blurred background) or auto."),
    loop: bool = typer.Option(True, "--loop/--no-loop", help="Seamless loop or one sweep."),
    inpaint_backend: str = typer.Option(
        None, "--inpaint", help="Inpainting backend (default auto)."
    ),
    backend: str = typer.Option(None, help="Segmentation backend when no --mask."),
) -> None:
    """Animate the product with a parallax effect: the product moves, the background less."""
    clip = _engine().parallax(
        image,
        out,
        mask=mask,
        seconds=seconds,
        fps=fps,
        motion=motion,
        strength=strength,
        size=size,
        loop=loop,
        fit=fit,
        inpaint_backend=inpaint_backend,
        segment_backend=backend,
    )
    width, height = clip.size
    typer.echo(
        f"{clip.path}: {clip.frames} frames, {width}x{height} at {clip.fps:g} fps, "
        f"{clip.motion}, {clip.fit}{', loop' if clip.loop else ''}"
    )


@stage_app.command("copy-paste")
def stage_copy_paste_command(
    inputs: list[Path] = typer.Argument(..., help="Product photos or folders of them."),
    index: Path = typer.Option(..., "--index", "-i", help="Catalog index folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    k: int = typer.Option(3, "-k", help="Candidates per product (one per retrieved scene)."),
    mask: Path = typer.Option(None, help="Product mask image (one input only)."),
    category: str = typer.Option(None, help="Only scenes of this catalog category."),
    shadow: bool = typer.Option(True, "--shadow/--no-shadow", help="Contact and cast shadows."),
    harmonize: bool = typer.Option(True, help="Nudge the product's colour to the scene."),
    inpaint_backend: str = typer.Option(
        None, "--inpaint", help="Inpainting backend (default auto)."
    ),
    product_type: str = typer.Option(
        None, "--type", help="The product's kind (Chair, Bookcase): its typical real width."
    ),
    size: str = typer.Option(None, help="The product's catalog size, width first (80x78 cm)."),
    fmt: str = typer.Option("png", "--format", help="png, jpg or webp."),
) -> None:
    """Copy-paste staging (paper §5.3): the product pasted into the k scenes it fits best.

    Writes <name>.copy-paste<N>.<format> per candidate and <name>.copy-paste.json with
    provenance (catalog id, retrieval score, placement), the fit and its parts, product SSIM
    and alignment figures. With --type or --size the product takes its real size.
    """
    engine = _engine()
    if mask is not None and len(inputs) != 1:
        raise StagingError("--mask applies to a single input image.")
    _write_generated(
        "copy-paste",
        inputs,
        out,
        fmt,
        lambda path: engine.stage_copy_paste(
            path,
            k=k,
            index=index,
            mask=mask,
            category=category,
            shadow=shadow,
            harmonize=harmonize,
            inpaint_backend=inpaint_backend,
            product_type=product_type,
            product_size=size,
        ),
    )


def _point(text: str | None, what: str) -> tuple[float, float] | None:
    """``X,Y`` as two floats (None stays None); a readable error otherwise."""
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        message = f"{what} must be X,Y in scene pixels (e.g. 480,610), got {text!r}."
        raise StagingError(message) from None
    return x, y


def _box(text: str | None) -> tuple[int, int, int, int] | None:
    """``--box X0,Y0,X1,Y1`` as four ints; a readable error for anything else."""
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except (ValueError, OverflowError):
        message = f"--box must be X0,Y0,X1,Y1 in scene pixels (e.g. 100,80,420,610), got {text!r}."
        raise StagingError(message) from None
    return x0, y0, x1, y1


@stage_app.command("in-scene")
def stage_in_scene_command(
    image: Path = typer.Argument(..., help="Product photo."),
    scene: Path = typer.Argument(..., help="Room photo (a copy-paste result's source.path)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output image (.png, .jpg or .webp)."),
    mask: Path = typer.Option(None, help="Product mask image (default: segment the photo)."),
    scene_mask: Path = typer.Option(
        None, help="The scene's objects (a copy-paste result's source.mask; default: segment)."
    ),
    object_at: str = typer.Option(None, help="X,Y: replace the object there (default: largest)."),
    box: str = typer.Option(
        None, help="X0,Y0,X1,Y1 in the scene's pixels: replace the object in it (source.box)."
    ),
    remove: bool = typer.Option(
        None, "--remove/--keep", help="Inpaint the object away, or keep it (default: the fit's)."
    ),
    position: str = typer.Option(None, help="X,Y: where the product's feet go."),
    scale: float = typer.Option(1.0, help="The product's size, times the fitted size."),
    shadow: bool = typer.Option(True, "--shadow/--no-shadow", help="Contact and cast shadows."),
    harmonize: bool = typer.Option(True, help="Nudge the product's colour to the scene."),
    product_type: str = typer.Option(None, "--type", help="The product's kind (Chair)."),
    size: str = typer.Option(None, help="The product's catalog size, width first (80x78 cm)."),
    object_size: str = typer.Option(
        None, help="The replaced object's real size (160x200 cm): calibrates the camera."
    ),
    object_type: str = typer.Option(
        None, help="The scene object's kind (Bed): only one of the product's kind is replaced."
    ),
    inpaint_backend: str = typer.Option(
        None, "--inpaint", help="Inpainting backend (default auto)."
    ),
) -> None:
    """Stage the product into one scene by hand: pick the object, move, resize, shadows.

    Writes the image and <out>.json (placement, object box, feet, fit). Coordinates are in
    the scene at 1024 px on its long side, as copy-paste results are.
    """
    staged = _engine().stage_in_scene(
        image,
        scene,
        mask=mask,
        scene_mask=scene_mask,
        object_at=_point(object_at, "--object-at"),
        box=_box(box),
        remove=remove,
        position=_point(position, "--position"),
        scale=scale,
        shadow=shadow,
        harmonize=harmonize,
        product_type=product_type,
        product_size=size,
        object_size=object_size,
        object_type=object_type,
        inpaint_backend=inpaint_backend,
    )
    target = staged.save(out)
    info = staged.describe()
    target.with_suffix(".json").write_text(json.dumps(info, indent=2, default=str))
    if warning := info["source"].get("warning"):
        typer.echo(f"{target.name}: {warning}", err=True)
    typer.echo(
        f"{target}: {info['source']['placement']}, feet at {info['source']['feet']}, "
        f"fit {info['scores']['fit']}"
    )


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
    fmt: str = typer.Option("png", "--format", help="png, jpg or webp."),
    engine_kind: str = typer.Option(
        "local", "--engine", help="local (threads here) or ray (a Ray Data pipeline)."
    ),
    address: str = typer.Option(
        None, help="--engine ray: the cluster to join (default: start a local one)."
    ),
    gpus: float = typer.Option(0.0, help="--engine ray: GPUs per worker actor."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Stage a whole catalog: one file per product x mode x placement (x candidate), a
    manifest (SQLite) of every output; re-running skips what is done, a killed run resumes.
    With --engine ray, --workers actors (each with its own engine) on a Ray cluster."""
    from staging.batch import run_batch

    summary = run_batch(
        _engine(),
        source,
        out,
        modes=modes.split(","),
        placements=_placements(placements),
        index=index,
        k=k,
        workers=workers,
        fmt=fmt,
        progress=not as_json,
        engine_kind=engine_kind,
        address=address,
        num_gpus=gpus,
    )
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
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
    service = create_service(_engine(), root, database=database, storage=storage, queue=queue,
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

    done = run_worker(_engine(), root, once=once, poll=poll, lease=lease, database=database,
                      storage=storage, queue=queue)  # fmt: skip
    typer.echo(f"{done} creatives generated")


@app.command("dataset")
def dataset_command(
    source: Path = typer.Argument(..., help="Folder of staged catalog images, or a CSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder (resumed if present)."),
    holes: int = typer.Option(4, help="Free-form hole masks per image."),
    max_side: int = typer.Option(1024, help="Images are kept at most this many px a side."),
    caption_column: str = typer.Option(
        None, help="CSV column with each image's caption (default: type, else category)."
    ),
    all_images: bool = typer.Option(
        False, "--all", help="Keep products on plain backgrounds too (default: staged only)."
    ),
    captions: str = typer.Option(
        "auto", help="blip, catalog, or auto (BLIP when blip-captioning is on disk)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Training data from a catalog's staged images: the product's mask, the product on
    white (pix2pix's input), the staged image, a caption and free-form holes, listed in
    metadata.jsonl. A killed run resumes."""
    from tqdm import tqdm

    engine = _engine()
    with tqdm(desc="dataset", unit="image", disable=as_json) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = engine.build_dataset(
            source, out, holes=holes, max_side=max_side, caption_column=caption_column,
            staged_only=not all_images, captions=captions, progress=progress,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    for record_id, reason in report.failed:
        typer.echo(f"skipped {record_id}: {reason}", err=True)
    typer.echo(
        f"{report.added} added, {report.skipped} already there, {len(report.failed)} skipped; "
        f"{report.records} images in {report.out}"
    )


@train_app.command("inpaint")
def train_inpaint_command(
    data: Path = typer.Argument(..., help="A folder written by `staging dataset`."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder (resumed if present)."),
    size: int = typer.Option(256, help="Training crops are size x size."),
    width: int = typer.Option(64, help="Channels of the first layer (the paper: 64)."),
    blocks: int = typer.Option(8, help="Residual blocks per generator (the paper: 8)."),
    batch: int = typer.Option(8, help="Images per step."),
    steps: int = typer.Option(10_000, help="Train until this step."),
    minutes: float = typer.Option(None, help="Stop (and save) after this many minutes."),
    wbl: str = typer.Option(
        "0.9,0.1", help="Weighted boundary loss: lambda_boundary,lambda_non_boundary, or off."
    ),
    lr: float = typer.Option(1e-4, help="Generators' learning rate."),
    validation: int = typer.Option(4, help="Images held apart for samples and figures."),
    sample_every: int = typer.Option(200, help="Write a sample sheet every N steps."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: the engine's)."),
    seed: int = typer.Option(0, help="Seeds the weights and the examples (to compare runs)."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """EdgeConnect with the weighted boundary loss (seed 000, section 5.3.1). Checkpoints
    and resumes; fp16 autocast on CUDA. Use the result with --inpaint edgeconnect:OUT."""
    from staging.train.edgeconnect import InpaintTraining, train_inpaint

    if wbl.strip().lower() in ("off", "none", "0"):
        weights = None
    else:
        try:
            weights = tuple(float(v) for v in wbl.split(","))
        except ValueError:
            weights = ()
        if len(weights) != 2:
            raise typer.BadParameter("give two numbers, e.g. 0.9,0.1, or off", param_hint="--wbl")
    options = InpaintTraining(
        size=size, width=width, blocks=blocks, batch=batch, steps=steps, minutes=minutes,
        lr=lr, wbl=weights, validation=validation, sample_every=sample_every,
        save_every=sample_every, device=device or _engine().device, seed=seed,
    )  # fmt: skip
    _train(train_inpaint, data, out, options, progress=not as_json, fresh=fresh, as_json=as_json)


@train_app.command("pix2pix")
def train_pix2pix_command(
    data: Path = typer.Argument(..., help="A folder written by `staging dataset`."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder (resumed if present)."),
    size: int = typer.Option(256, help="Training crops are size x size (a multiple of 256)."),
    width: int = typer.Option(64, help="Channels of the first layer (pix2pix: 64)."),
    batch: int = typer.Option(1, help="Pairs per step (pix2pix: 1)."),
    steps: int = typer.Option(10_000, help="Train until this step."),
    minutes: float = typer.Option(None, help="Stop (and save) after this many minutes."),
    lr: float = typer.Option(2e-4, help="Learning rate of both networks."),
    validation: int = typer.Option(4, help="Pairs held apart for samples and figures."),
    sample_every: int = typer.Option(200, help="Write a sample sheet every N steps."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: the engine's)."),
    seed: int = typer.Option(0, help="Seeds the weights and the examples (to compare runs)."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """pix2pix (U-Net, PatchGAN, L1 + GAN) on product-on-white -> staged pairs, the paper's
    vanilla-staging baseline. Use the result with --backend pix2pix:OUT."""
    from staging.train.pix2pix import Pix2PixTraining, train_pix2pix

    if size % 256:
        message = "a multiple of 256 (the U-Net halves it 8 times)"
        raise typer.BadParameter(message, param_hint="--size")
    options = Pix2PixTraining(
        size=size, width=width, batch=batch, steps=steps, minutes=minutes, lr=lr,
        validation=validation, sample_every=sample_every, save_every=sample_every,
        device=device or _engine().device, seed=seed,
    )  # fmt: skip
    _train(train_pix2pix, data, out, options, progress=not as_json, fresh=fresh, as_json=as_json)


@train_app.command("sd-outpaint")
def train_sd_outpaint_command(
    data: Path = typer.Argument(..., help="A folder written by `staging dataset`."),
    out: Path = typer.Option(..., "--out", "-o", help="LoRA folder (resumed if present)."),
    model: str = typer.Option("sd-inpainting", help="The SD inpainting model to adapt."),
    size: int = typer.Option(512, help="Training crops are size x size."),
    rank: int = typer.Option(4, help="LoRA rank."),
    batch: int = typer.Option(1, help="Images per step."),
    steps: int = typer.Option(1000, help="Train until this step."),
    minutes: float = typer.Option(None, help="Stop (and save) after this many minutes."),
    lr: float = typer.Option(1e-4, help="Learning rate of the adapters."),
    save_every: int = typer.Option(100, help="Save every N steps."),
    seed: int = typer.Option(0, help="Seeds the weights and the examples (to compare runs)."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """LoRA fine-tuning of SD inpainting to paint your catalog's scenes around a product
    (AdBooster). A GPU job (--device cuda); use the result with `staging --lora OUT`."""
    from staging.train.sd_outpaint import OutpaintTraining, train_sd_outpaint

    options = OutpaintTraining(
        model=model, size=size, rank=rank, batch=batch, steps=steps, minutes=minutes, lr=lr,
        save_every=save_every, seed=seed,
    )  # fmt: skip
    _train(train_sd_outpaint, data, out, _engine().runtime, options, progress=not as_json,
           fresh=fresh, as_json=as_json)  # fmt: skip


@bench_app.command("copy-paste")
def bench_copy_paste_command(
    inputs: list[Path] = typer.Argument(..., help="Product photos or folders of them."),
    index: Path = typer.Option(..., "--index", "-i", help="Catalog index folder."),
    k: int = typer.Option(3, "-k", help="Candidates per product."),
    limit: int = typer.Option(20, help="At most this many products."),
    inpaint_backend: str = typer.Option(
        None, "--inpaint", help="Inpainting backend (default auto)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Seconds per copy-paste candidate end to end, cold (scene not yet inpainted) and warm."""
    from staging.evaluate.bench_copy_paste import bench_copy_paste
    from staging.io import list_images

    files = _expand(inputs, list_images)[:limit]
    report = bench_copy_paste(_engine(), index, files, k=k, inpaint_backend=inpaint_backend)
    _print_report(report, as_json)


@bench_app.command("serve")
def bench_serve_command(
    inputs: list[Path] = typer.Argument(..., help="Product photos or folders of them."),
    placements: list[str] = typer.Option(
        None,
        help="Placements requested (default 300x250,728x90,1080x1080); repeat or comma-separate.",
    ),
    clients: int = typer.Option(50, help="Concurrent clients (kept-alive connections)."),
    rate: float = typer.Option(200.0, help="Requests/s over all clients, cold and warm."),
    seconds: float = typer.Option(10.0, help="Seconds per phase."),
    limit: int = typer.Option(10, help="At most this many products."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The creative service under concurrent clients: cold (fallbacks), warm (cache) at
    --rate, then its capacity (clients sending back to back)."""
    import tempfile

    from staging.evaluate.bench_serve import bench_serve
    from staging.io import list_images

    files = _expand(inputs, list_images)[:limit]
    sizes = _placements(placements) or ["300x250", "728x90", "1080x1080"]
    with tempfile.TemporaryDirectory(prefix="staging-bench-serve-") as root:
        report = bench_serve(_engine(), files, Path(root), sizes, clients, rate, seconds)
    _print_report(report, as_json)


@bench_app.command("parallax")
def bench_parallax_command(
    sizes: str = typer.Option("720,1080", help="Square sizes to time."),
    seconds: float = typer.Option(3.0, help="Clip length per size."),
    fps: float = typer.Option(30.0, help="Frames per second of the clip."),
    motion: str = typer.Option("orbit", help="pan, zoom or orbit."),
    inpaint_backend: str = typer.Option(
        None, "--inpaint", help="Inpainting backend (default auto)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Parallax frames per second, render only and render + H.264 encode, at 720² and 1080²."""
    from staging.evaluate.bench_parallax import bench_parallax

    report = bench_parallax(
        _engine().inpainter(inpaint_backend),
        sizes=tuple(int(s) for s in sizes.split(",")),
        seconds=seconds,
        fps=fps,
        motion=motion,
    )
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['frames']} frames, {report['motion']}, inpainter {report['inpainter']}, "
        f"{report['cpus']} CPUs"
    )
    typer.echo(f"{'size':>10} {'prepare s':>9} {'render fps':>10} {'+encode fps':>11} {'KiB':>7}")
    for name, r in report["sizes"].items():
        typer.echo(
            f"{name:>10} {r['prepare_s']:9.2f} {r['render_fps']:10.1f} "
            f"{r['render_encode_fps']:11.1f} {r['file_kib']:7.0f}"
        )


@bench_app.command("buckets")
def bench_buckets_command(
    products: int = typer.Option(1000, help="Synthetic products (aspect 1:4 to 4:1)."),
    sizes: str = typer.Option(None, help="Comma-separated placements (default: 10 standard)."),
    r: float = typer.Option(1.2, "--r", help="Bucket increment ratio (seed: 1.2)."),
    fill: float = typer.Option(0.6, help="Product share of the canvas's limiting side."),
    align: str = typer.Option("center", help="center, bottom, bottom-left, ..."),
    margin: float = typer.Option(0.05, help="Safe margin, share of the short side."),
    merge: float = typer.Option(1.5, help="Max canvas growth when a bucket serves another."),
    variants: int = typer.Option(100, help="Near-duplicate siblings per size (0: skip)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
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
    _print_report(report, as_json)


@bench_app.command("bandit")
def bench_bandit_command(
    rounds: int = typer.Option(5000, help="Simulated ad requests per run."),
    seed: int = typer.Option(0, help="Seed of the simulated worlds."),
    repeats: int = typer.Option(3, help="Simulated worlds (seeds seed, seed+1, ...) averaged."),
    alpha: float = typer.Option(None, help="LinUCB exploration weight (default 0.25)."),
    epsilon: float = typer.Option(0.1, help="Exploration rate of epsilon-greedy."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
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
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['rounds']} rounds x {report['repeats']} worlds, {len(report['arms'])} themes, "
        f"{report['features']} features, alpha {report['alpha']:g}, eps {report['epsilon']:g}"
    )
    marks = report["checkpoints"]
    header = "".join(f"{m:>9}" for m in marks)
    typer.echo(f"{'cumulative regret':18}{header}{'CTR':>8}{'best %':>8}")
    for policy, curve in report["regret"].items():
        name = policy + (" *" if policy == "best-fixed" else "")
        typer.echo(
            f"{name:18}"
            + "".join(f"{v:9.1f}" for v in curve)
            + f"{report['ctr'][policy]:8.4f}{100 * report['last_share_best'][policy]:7.0f}%"
        )
    typer.echo(
        f"winner: {report['winner']} (final regret {report['regret_vs_random']:.2f} x random's)"
        "\n* oracle reference: the single best theme, known in advance; 'best %': share of the "
        "last 10% of rounds that chose the truly best theme"
    )


@eval_app.command("clip-score")
def eval_clip_score(
    images: Path = typer.Option(..., help="Folder of generated images."),
    prompts: Path = typer.Option(
        None, help="Prompts: .json {image: prompt}, .csv image,prompt, or one line per image."
    ),
    prompt: str = typer.Option(None, help="One prompt for every image."),
    limit: int = typer.Option(0, help="Use only the first N images (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """CLIP image-text similarity of images and their prompts (AdBooster's measure)."""
    from staging.evaluate.clip_score import evaluate_clip_score

    report = evaluate_clip_score(_engine(), images, prompts=prompts, prompt=prompt, limit=limit)
    _print_report(report, as_json)


# -- prompt-based and vanilla staging ------------------------------------------------------------
_GEN_BACKEND_HELP = "auto (best on disk, else studio), studio, sd, sd2, sdxl, controlnet."


def _write_generated(mode: str, files: list[Path], out: Path, fmt: str, run) -> None:
    """Run ``run(path)`` per product, write ``<name>.<mode><N>.<fmt>`` and a JSON summary."""
    from staging.io import list_images

    files = _expand(files, list_images)
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    written = 0
    hint_shown = False
    for path in tqdm(files, desc=mode, unit="img", disable=len(files) < 2):
        try:
            results = run(path)
        except StagingError as exc:
            if len(files) == 1:
                raise
            failures.append(f"{path}: {exc}")
            continue
        summary = []
        for number, staged in enumerate(results, start=1):
            target = staged.save(out / f"{path.stem}.{mode}{number}.{fmt.lstrip('.')}")
            info = staged.describe()
            hint = info["source"].pop("hint", None)
            if hint and not hint_shown:
                typer.echo(hint, err=True)
                hint_shown = True
            if warning := info["source"].get("warning"):
                typer.echo(f"{target.name}: {warning}", err=True)
            summary.append({"file": target.name, **info})
            written += 1
        (out / f"{path.stem}.{mode}.json").write_text(json.dumps(summary, indent=2, default=str))
    typer.echo(f"{written} staged images from {len(files) - len(failures)} products in {out}")
    if failures:
        typer.echo("failed:\n  " + "\n  ".join(failures), err=True)
        raise typer.Exit(1)


def _placements(placement: list[str] | None) -> list[str] | None:
    if not placement:
        return None
    return [p.strip() for item in placement for p in item.split(",") if p.strip()]


@stage_app.command("prompt")
def stage_prompt_command(
    inputs: list[Path] = typer.Argument(..., help="Product photos or folders of them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    prompt: str = typer.Option(None, help="Scene prompt, used as it is."),
    theme: str = typer.Option(None, help="Library theme of the category, interest or scene."),
    category: str = typer.Option(None, help="Product category (picks the themes)."),
    placement: list[str] = typer.Option(
        None, help="square, portrait, story, leaderboard, WxH or W:H; repeat or comma-separate."
    ),
    fill: float = typer.Option(0.6, help="Product share of the canvas's limiting side."),
    align: str = typer.Option("center", help="center, bottom, bottom-left, ..."),
    margin: float = typer.Option(0.05, help="Safe margin, share of the short side."),
    seed: int = typer.Option(0, help="First seed."),
    num_images: int = typer.Option(1, "--num-images", "-n", help="Images per placement."),
    backend: str = typer.Option(None, help=_GEN_BACKEND_HELP),
    steps: int = typer.Option(None, help="Denoising steps (backend default)."),
    guidance: float = typer.Option(None, help="Guidance scale (backend default)."),
    mask: Path = typer.Option(None, help="Product mask image (one input only)."),
    cache: Path = typer.Option(None, help="Generation cache folder (reused across runs)."),
    fmt: str = typer.Option("png", "--format", help="png, jpg or webp."),
) -> None:
    """Prompt-based staging (Taboola): a generated scene around the product, per placement.

    Writes <name>.prompt<N>.<format> and <name>.prompt.json (provenance, SSIM, expansion).
    """
    engine = _engine()
    if mask is not None and len(inputs) != 1:
        raise StagingError("--mask applies to a single input image.")
    _write_generated(
        "prompt",
        inputs,
        out,
        fmt,
        lambda path: engine.stage_prompt(
            path,
            prompt=prompt,
            theme=theme,
            category=category,
            placement=_placements(placement),
            fill=fill,
            align=align,
            margin=margin,
            seed=seed,
            num_images=num_images,
            backend=backend,
            mask=mask,
            steps=steps,
            guidance=guidance,
            cache=cache,
        ),
    )


@stage_app.command("vanilla")
def stage_vanilla_command(
    inputs: list[Path] = typer.Argument(..., help="Product photos or folders of them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    category: str = typer.Option(None, help="Product category: the only prompt ('a photo of')."),
    placement: list[str] = typer.Option(
        None, help="square, portrait, story, leaderboard, WxH or W:H; repeat or comma-separate."
    ),
    fill: float = typer.Option(0.6, help="Product share of the canvas's limiting side."),
    align: str = typer.Option("center", help="center, bottom, bottom-left, ..."),
    margin: float = typer.Option(0.05, help="Safe margin, share of the short side."),
    seed: int = typer.Option(0, help="First seed."),
    num_images: int = typer.Option(1, "--num-images", "-n", help="Images per placement."),
    backend: str = typer.Option(
        None, help=_GEN_BACKEND_HELP + " pix2pix[:DIR]: trained by staging train pix2pix."
    ),
    steps: int = typer.Option(None, help="Denoising steps (backend default)."),
    mask: Path = typer.Option(None, help="Product mask image (one input only)."),
    cache: Path = typer.Option(None, help="Generation cache folder (reused across runs)."),
    fmt: str = typer.Option("png", "--format", help="png, jpg or webp."),
) -> None:
    """Vanilla staging: the background generated around the product, no scene prompt.

    Writes <name>.vanilla<N>.<format> and <name>.vanilla.json (provenance, SSIM, expansion).
    """
    engine = _engine()
    if mask is not None and len(inputs) != 1:
        raise StagingError("--mask applies to a single input image.")
    _write_generated(
        "vanilla",
        inputs,
        out,
        fmt,
        lambda path: engine.stage_vanilla(
            path,
            category=category,
            placement=_placements(placement),
            fill=fill,
            align=align,
            margin=margin,
            seed=seed,
            num_images=num_images,
            backend=backend,
            mask=mask,
            steps=steps,
            cache=cache,
        ),
    )


def _train(trainer: Callable[..., dict], *args: Any, as_json: bool, **options: Any) -> None:
    """Run one of the trainers and print its summary (without the per-step history); a
    missing dataset or a clashing checkpoint is one readable error."""
    try:
        summary = trainer(*args, **options)
    except (FileNotFoundError, ValueError) as exc:
        raise StagingError(str(exc)) from exc
    summary.pop("history")
    _print_report(summary, as_json)


def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if isinstance(value, float):
            typer.echo(f"{key:28} {value:.4f}")
        elif not isinstance(value, (list, dict)):
            typer.echo(f"{key:28} {value}")
        elif isinstance(value, dict):
            typer.echo(f"{key}:")
            for sub, v in value.items():
                typer.echo(f"  {sub:26} {v:.4f}" if isinstance(v, float) else f"  {sub:26} {v}")


def main() -> None:
    """Console-script entry point: user errors print as one line, exit code 2."""
    try:
        app()
    except StagingError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
