"""``staging dataset`` and ``staging train``: training data from a catalog's staged images, and
the trainers of the inpainting, pix2pix and SD-outpainting models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from staging.cli.base import (
    REPORT_JSON,
    SUMMARY_JSON,
    app,
    json_or_skipped,
    make_engine,
    print_report,
    train_app,
)
from staging.errors import StagingError

# Options the trainers share.
DATA = typer.Argument(..., help="A folder written by `staging dataset`.")
MINUTES = typer.Option(None, help="Stop (and save) after this many minutes.")
SAMPLE_EVERY = typer.Option(200, help="Write a sample sheet every N steps.")
DEVICE = typer.Option(None, help="cpu, cuda, cuda:1 (default: the engine's).")
RUN_SEED = typer.Option(0, help="Seeds the weights and the examples (to compare runs).")
FRESH = typer.Option(False, help="Start over instead of resuming.")
MODEL_OUT = typer.Option(..., "--out", "-o", help="Model folder (resumed if present).")
STEPS = typer.Option(10_000, help="Train until this step.")


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
    as_json: bool = REPORT_JSON,
) -> None:
    """Training data from a catalog's staged images: the product's mask, the product on
    white (pix2pix's input), the staged image, a caption and free-form holes, listed in
    metadata.jsonl. A killed run resumes."""
    from tqdm import tqdm

    engine = make_engine()
    with tqdm(desc="dataset", unit="image", disable=as_json) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = engine.build_dataset(
            source, out, holes=holes, max_side=max_side, caption_column=caption_column,
            staged_only=not all_images, captions=captions, progress=progress,
        )  # fmt: skip
    if json_or_skipped(report, as_json):
        return
    typer.echo(
        f"{report.added} added, {report.skipped} already there, {len(report.failed)} skipped; "
        f"{report.records} images in {report.out}"
    )


@train_app.command("inpaint")
def train_inpaint_command(
    data: Path = DATA,
    out: Path = MODEL_OUT,
    size: int = typer.Option(256, help="Training crops are size x size."),
    width: int = typer.Option(64, help="Channels of the first layer (the paper: 64)."),
    blocks: int = typer.Option(8, help="Residual blocks per generator (the paper: 8)."),
    batch: int = typer.Option(8, help="Images per step."),
    steps: int = STEPS,
    minutes: float = MINUTES,
    wbl: str = typer.Option(
        "0.9,0.1", help="Weighted boundary loss: lambda_boundary,lambda_non_boundary, or off."
    ),
    lr: float = typer.Option(1e-4, help="Generators' learning rate."),
    validation: int = typer.Option(4, help="Images held apart for samples and figures."),
    sample_every: int = SAMPLE_EVERY,
    device: str = DEVICE,
    seed: int = RUN_SEED,
    fresh: bool = FRESH,
    as_json: bool = SUMMARY_JSON,
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
    options = _gan_options(
        InpaintTraining, sample_every, device, size=size, width=width, blocks=blocks,
        batch=batch, steps=steps, minutes=minutes, lr=lr, wbl=weights, validation=validation,
        seed=seed,
    )  # fmt: skip
    _train(train_inpaint, data, out, options, fresh=fresh, as_json=as_json)


@train_app.command("pix2pix")
def train_pix2pix_command(
    data: Path = DATA,
    out: Path = MODEL_OUT,
    size: int = typer.Option(256, help="Training crops are size x size (a multiple of 256)."),
    width: int = typer.Option(64, help="Channels of the first layer (pix2pix: 64)."),
    batch: int = typer.Option(1, help="Pairs per step (pix2pix: 1)."),
    steps: int = STEPS,
    minutes: float = MINUTES,
    lr: float = typer.Option(2e-4, help="Learning rate of both networks."),
    validation: int = typer.Option(4, help="Pairs held apart for samples and figures."),
    sample_every: int = SAMPLE_EVERY,
    device: str = DEVICE,
    seed: int = RUN_SEED,
    fresh: bool = FRESH,
    as_json: bool = SUMMARY_JSON,
) -> None:
    """pix2pix (U-Net, PatchGAN, L1 + GAN) on product-on-white -> staged pairs, the paper's
    vanilla-staging baseline. Use the result with --backend pix2pix:OUT."""
    from staging.train.pix2pix import Pix2PixTraining, train_pix2pix

    if size % 256:
        message = "a multiple of 256 (the U-Net halves it 8 times)"
        raise typer.BadParameter(message, param_hint="--size")
    options = _gan_options(
        Pix2PixTraining, sample_every, device, size=size, width=width, batch=batch,
        steps=steps, minutes=minutes, lr=lr, validation=validation, seed=seed,
    )  # fmt: skip
    _train(train_pix2pix, data, out, options, fresh=fresh, as_json=as_json)


@train_app.command("sd-outpaint")
def train_sd_outpaint_command(
    data: Path = DATA,
    out: Path = typer.Option(..., "--out", "-o", help="LoRA folder (resumed if present)."),
    model: str = typer.Option("sd-inpainting", help="The SD inpainting model to adapt."),
    size: int = typer.Option(512, help="Training crops are size x size."),
    rank: int = typer.Option(4, help="LoRA rank."),
    batch: int = typer.Option(1, help="Images per step."),
    steps: int = typer.Option(1000, help="Train until this step."),
    minutes: float = MINUTES,
    lr: float = typer.Option(1e-4, help="Learning rate of the adapters."),
    save_every: int = typer.Option(100, help="Save every N steps."),
    seed: int = RUN_SEED,
    fresh: bool = FRESH,
    as_json: bool = SUMMARY_JSON,
) -> None:
    """LoRA fine-tuning of SD inpainting to paint your catalog's scenes around a product
    (AdBooster). A GPU job (--device cuda); use the result with `staging --lora OUT`."""
    from staging.train.sd_outpaint import OutpaintTraining, train_sd_outpaint

    options = OutpaintTraining(
        model=model, size=size, rank=rank, batch=batch, steps=steps, minutes=minutes, lr=lr,
        save_every=save_every, seed=seed,
    )  # fmt: skip
    _train(train_sd_outpaint, data, out, make_engine().runtime, options, fresh=fresh,
           as_json=as_json)  # fmt: skip


def _gan_options(
    options_type: Callable[..., Any], sample_every: int, device: str | None, **fields: Any
) -> Any:
    """The options of an EdgeConnect or pix2pix run: a checkpoint with every sample sheet, on
    ``device``, else the engine's."""
    return options_type(
        sample_every=sample_every, save_every=sample_every,
        device=device or make_engine().device, **fields,
    )  # fmt: skip


def _train(trainer: Callable[..., dict], *args: Any, fresh: bool, as_json: bool) -> None:
    """Run one of the trainers and print its summary (without the per-step history); the
    progress bar is off when the summary is JSON. A missing dataset or a clashing checkpoint
    is one readable error."""
    try:
        summary = trainer(*args, progress=not as_json, fresh=fresh)
    except (FileNotFoundError, ValueError) as exc:
        raise StagingError(str(exc)) from exc
    summary.pop("history")
    print_report(summary, as_json)
