"""``staging stage`` (copy-paste, in-scene, prompt, vanilla) and ``staging parallax``: the
commands that write staged images or clips, with ``<name>.<mode>.json`` provenance beside them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from tqdm import tqdm

from staging.cli.base import (
    ALIGN,
    FILL,
    FORMAT,
    HARMONIZE,
    INPAINT,
    INPUTS,
    MARGIN,
    OUT_FOLDER,
    PRODUCT_SIZE,
    SHADOW,
    app,
    expand_inputs,
    make_engine,
    split_placements,
    stage_app,
)
from staging.errors import StagingError

_GEN_BACKEND_HELP = "auto (best on disk, else studio), studio, sd, sd2, sdxl, controlnet."
PLACEMENT = typer.Option(
    None, help="square, portrait, story, leaderboard, WxH or W:H; repeat or comma-separate."
)
SEED = typer.Option(0, help="First seed.")
NUM_IMAGES = typer.Option(1, "--num-images", "-n", help="Images per placement.")
STEPS = typer.Option(None, help="Denoising steps (backend default).")
ONE_MASK = typer.Option(None, help="Product mask image (one input only).")
CACHE = typer.Option(None, help="Generation cache folder (reused across runs).")


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
    inpaint_backend: str = INPAINT,
    backend: str = typer.Option(None, help="Segmentation backend when no --mask."),
) -> None:
    """Animate the product with a parallax effect: the product moves, the background less."""
    clip = make_engine().parallax(
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
    inputs: list[Path] = INPUTS,
    index: Path = typer.Option(..., "--index", "-i", help="Catalog index folder."),
    out: Path = OUT_FOLDER,
    k: int = typer.Option(3, "-k", help="Candidates per product (one per retrieved scene)."),
    mask: Path = ONE_MASK,
    category: str = typer.Option(None, help="Only scenes of this catalog category."),
    shadow: bool = SHADOW,
    harmonize: bool = HARMONIZE,
    inpaint_backend: str = INPAINT,
    product_type: str = typer.Option(
        None, "--type", help="The product's kind (Chair, Bookcase): its typical real width."
    ),
    size: str = PRODUCT_SIZE,
    fmt: str = FORMAT,
) -> None:
    """Copy-paste staging (paper §5.3): the product pasted into the k scenes it fits best.

    Writes <name>.copy-paste<N>.<format> per candidate and <name>.copy-paste.json with
    provenance (catalog id, retrieval score, placement), the fit and its parts, product SSIM
    and alignment figures. With --type or --size the product takes its real size.
    """
    engine = make_engine()
    _check_one_input(mask, inputs)
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
    shadow: bool = SHADOW,
    harmonize: bool = HARMONIZE,
    product_type: str = typer.Option(None, "--type", help="The product's kind (Chair)."),
    size: str = PRODUCT_SIZE,
    object_size: str = typer.Option(
        None, help="The replaced object's real size (160x200 cm): calibrates the camera."
    ),
    object_type: str = typer.Option(
        None, help="The scene object's kind (Bed): only one of the product's kind is replaced."
    ),
    inpaint_backend: str = INPAINT,
) -> None:
    """Stage the product into one scene by hand: pick the object, move, resize, shadows.

    Writes the image and <out>.json (placement, object box, feet, fit). Coordinates are in
    the scene at 1024 px on its long side, as copy-paste results are.
    """
    staged = make_engine().stage_in_scene(
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


def _check_one_input(mask: Path | None, inputs: list[Path]) -> None:
    """A given ``--mask`` is one product's: refuse it with several inputs."""
    if mask is not None and len(inputs) != 1:
        raise StagingError("--mask applies to a single input image.")


def _generation(placement, fill, align, margin, seed, num_images, backend, mask, steps, cache):
    """The keyword arguments ``stage prompt`` and ``stage vanilla`` pass alike to the engine."""
    return {
        "placement": split_placements(placement),
        "fill": fill,
        "align": align,
        "margin": margin,
        "seed": seed,
        "num_images": num_images,
        "backend": backend,
        "mask": mask,
        "steps": steps,
        "cache": cache,
    }


def _stage_generated(mode: str, inputs: list[Path], out: Path, fmt: str, generation: dict,
                     **mode_options) -> None:  # fmt: skip
    """``engine.stage_<mode>`` with the shared and the mode's own options, per product."""
    engine = make_engine()
    _check_one_input(generation["mask"], inputs)
    stage = getattr(engine, f"stage_{mode}")
    _write_generated(mode, inputs, out, fmt, lambda path: stage(path, **mode_options, **generation))


def _write_generated(mode: str, files: list[Path], out: Path, fmt: str, run) -> None:
    """Run ``run(path)`` per product, write ``<name>.<mode><N>.<fmt>`` (each result under its
    own mode, numbered per mode) and a JSON summary ``<name>.<mode>.json`` with each result's
    label and words (:mod:`staging.captions`)."""
    from staging.captions import explain, label
    from staging.io import list_images

    files = expand_inputs(files, list_images)
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
        numbers: dict[str, int] = {}
        for staged in results:
            number = numbers[staged.mode] = numbers.get(staged.mode, 0) + 1
            target = staged.save(out / f"{path.stem}.{staged.mode}{number}.{fmt.lstrip('.')}")
            info = staged.describe()
            hint = info["source"].pop("hint", None)
            if hint and not hint_shown:
                typer.echo(hint, err=True)
                hint_shown = True
            if warning := info["source"].get("warning"):
                typer.echo(f"{target.name}: {warning}", err=True)
            summary.append(
                {"file": target.name, "label": label(staged), "why": explain(staged), **info}
            )
            written += 1
        (out / f"{path.stem}.{mode}.json").write_text(json.dumps(summary, indent=2, default=str))
    typer.echo(f"{written} staged images from {len(files) - len(failures)} products in {out}")
    if failures:
        typer.echo("failed:\n  " + "\n  ".join(failures), err=True)
        raise typer.Exit(1)


@stage_app.command("prompt")
def stage_prompt_command(
    inputs: list[Path] = INPUTS,
    out: Path = OUT_FOLDER,
    prompt: str = typer.Option(None, help="Scene prompt, used as it is."),
    theme: str = typer.Option(None, help="Library theme of the category, interest or scene."),
    category: str = typer.Option(None, help="Product category (picks the themes)."),
    placement: list[str] = PLACEMENT,
    fill: float = FILL, align: str = ALIGN, margin: float = MARGIN,
    seed: int = SEED, num_images: int = NUM_IMAGES,
    backend: str = typer.Option(None, help=_GEN_BACKEND_HELP),
    steps: int = STEPS,
    guidance: float = typer.Option(None, help="Guidance scale (backend default)."),
    mask: Path = ONE_MASK, cache: Path = CACHE, fmt: str = FORMAT,
) -> None:  # fmt: skip
    """Prompt-based staging (Taboola): a generated scene around the product, per placement.

    Writes <name>.prompt<N>.<format> and <name>.prompt.json (provenance, SSIM, expansion).
    """
    generation = _generation(placement, fill, align, margin, seed, num_images, backend, mask,
                             steps, cache)  # fmt: skip
    _stage_generated("prompt", inputs, out, fmt, generation, prompt=prompt, theme=theme,
                     category=category, guidance=guidance)  # fmt: skip


@stage_app.command("vanilla")
def stage_vanilla_command(
    inputs: list[Path] = INPUTS,
    out: Path = OUT_FOLDER,
    category: str = typer.Option(None, help="Product category: the only prompt ('a photo of')."),
    placement: list[str] = PLACEMENT,
    fill: float = FILL, align: str = ALIGN, margin: float = MARGIN,
    seed: int = SEED, num_images: int = NUM_IMAGES,
    backend: str = typer.Option(
        None, help=_GEN_BACKEND_HELP + " pix2pix[:DIR]: trained by staging train pix2pix."
    ),
    steps: int = STEPS, mask: Path = ONE_MASK, cache: Path = CACHE, fmt: str = FORMAT,
) -> None:  # fmt: skip
    """Vanilla staging: the background generated around the product, no scene prompt.

    Writes <name>.vanilla<N>.<format> and <name>.vanilla.json (provenance, SSIM, expansion).
    """
    generation = _generation(placement, fill, align, margin, seed, num_images, backend, mask,
                             steps, cache)  # fmt: skip
    _stage_generated("vanilla", inputs, out, fmt, generation, category=category)


@stage_app.command("all")
def stage_all_command(
    inputs: list[Path] = INPUTS,
    index: Path = typer.Option(None, "--index", "-i", help="Catalog index folder (copy-paste)."),
    out: Path = OUT_FOLDER,
    k: int = typer.Option(3, "-k", help="Copy-paste candidates per product."),
    product_type: str = typer.Option(None, "--type", help="The product's kind (Chair)."),
    size: str = PRODUCT_SIZE,
    placement: list[str] = PLACEMENT,
    seed: int = SEED,
    backend: str = typer.Option(None, help=_GEN_BACKEND_HELP),
    mask: Path = ONE_MASK,
    fmt: str = FORMAT,
) -> None:
    """Every mode for each product, as the app's Studio grid: copy-paste (k scenes of
    --index), vanilla, and prompt with the theme the category's bandit suggests.

    Writes <name>.<mode><N>.<format> per result and <name>.all.json with each result's
    label, its words (where it came from, why, what the product was taken for, which models
    ran) and provenance. A mode that cannot run (no --index) is said, the others still run.
    """
    engine = make_engine()
    _check_one_input(mask, inputs)

    def run(path: Path) -> list:
        found = engine.stage_candidates(
            path, k=k, index=index, mask=mask, product_type=product_type, product_size=size,
            placement=split_placements(placement), seed=seed, backend=backend,
        )  # fmt: skip
        for mode, why in found.skipped.items():
            typer.echo(f"{path.name}: {mode} made nothing: {why}", err=True)
        return found.results

    _write_generated("all", inputs, out, fmt, run)
