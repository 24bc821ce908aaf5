"""``staging eval``: quality metrics (segmentation, retrieval, inpainting, realism, copy-paste,
CLIP score) on labelled data; each prints its report as aligned lines or JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from staging.cli.base import AS_JSON, eval_app, make_engine, print_report


@eval_app.command("segment")
def eval_segment(
    images: Path = typer.Option(..., help="Folder of images."),
    masks: Path = typer.Option(..., help="Folder of ground-truth masks (same file stems)."),
    backend: str = typer.Option(None, help="Backend name (default: auto)."),
    as_json: bool = AS_JSON,
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
        make_engine(),
        images,
        masks,
        backend=backend,
        limit=limit,
        compare_plain=compare_plain,
        progress=not as_json,
    )
    print_report(report, as_json)


@eval_app.command("retrieval")
def eval_retrieval(
    csv_file: Path = typer.Option(..., "--csv", help="CSV with an image column and labels."),
    root: Path = typer.Option(None, help="Folder image paths are relative to (default: CSV's)."),
    label: str = typer.Option("type", help="Label column: same label = relevant."),
    min_count: int = typer.Option(10, help="Only labels with at least this many images."),
    embedder: str = typer.Option(None, help="Embedder name (default: handcrafted)."),
    masks: str = typer.Option("backdrop", help="Segmentation backend for product masks."),
    as_json: bool = AS_JSON,
) -> None:
    """Leave-one-out retrieval P@1/3/5 and R@1/3/5 (the paper's Table 1 metrics)."""
    from staging.evaluate.retrieval import evaluate_retrieval

    report = evaluate_retrieval(
        make_engine(),
        csv_file,
        root=root,
        label=label,
        min_count=min_count,
        embedder=embedder,
        progress=not as_json,
        masks=masks,
    )
    print_report(report, as_json)


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
    as_json: bool = AS_JSON,
) -> None:
    """Product-shaped holes in room photos: hole PSNR, SSIM over the hole's box, boundary-
    weighted L1 (0.9/0.1, the paper's WBL weights) and seconds per image, beside Telea."""
    from staging.evaluate.inpaint import evaluate_inpainting

    report = evaluate_inpainting(
        make_engine(),
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
    print_report(report, as_json)


@eval_app.command("realism")
def eval_realism(
    real: Path = typer.Option(..., help="Folder of real photos (the reference)."),
    generated: Path = typer.Option(..., help="Folder of generated images."),
    features: str = typer.Option(
        "mobilenet_v2", help="mobilenet_v2 (weights here), or inception (FID's network)."
    ),
    subsets: int = typer.Option(100, help="KID: random subsets averaged."),
    subset_size: int = typer.Option(1000, help="KID: images per subset (capped at the sets)."),
    as_json: bool = AS_JSON,
) -> None:
    """How real generated images look: KID x1000 (mean, std over subsets) and the Frechet
    distance of deep features against real photos (FID with --features inception)."""
    from staging.evaluate.realism import feature_fn, load_folder, realism

    extract = feature_fn(features, make_engine().runtime.store)
    report = realism(load_folder(real), load_folder(generated), extract, subsets, subset_size)
    report["features"] = features
    print_report(report, as_json)


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
    as_json: bool = AS_JSON,
) -> None:
    """Stage every product into its k best scenes; write every result, contact sheets and the
    realism (KID, FD) against the reference beside real-vs-real and naive-paste anchors."""
    from staging.evaluate.copy_paste import evaluate_copy_paste
    from staging.evaluate.realism import feature_fn

    engine = make_engine()
    report = evaluate_copy_paste(
        engine, products, scenes, reference, out, feature_fn(features, engine.runtime.store),
        k=k, limit=limit, progress=not as_json, inpaint_backend=inpaint_backend, bare=bare,
        csv=csv,
    )  # fmt: skip
    print_report(report, as_json)


@eval_app.command("clip-score")
def eval_clip_score(
    images: Path = typer.Option(..., help="Folder of generated images."),
    prompts: Path = typer.Option(
        None, help="Prompts: .json {image: prompt}, .csv image,prompt, or one line per image."
    ),
    prompt: str = typer.Option(None, help="One prompt for every image."),
    limit: int = typer.Option(0, help="Use only the first N images (0: all)."),
    as_json: bool = AS_JSON,
) -> None:
    """CLIP image-text similarity of images and their prompts (AdBooster's measure)."""
    from staging.evaluate.clip_score import evaluate_clip_score

    report = evaluate_clip_score(make_engine(), images, prompts=prompts, prompt=prompt, limit=limit)
    print_report(report, as_json)
