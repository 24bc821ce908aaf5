"""The ``staging`` command line: the same engine calls as the app and the Python API.

Global options (``--device``, ``--models-dir``, ``--offline``) go before the command and
override ``STAGING_*`` environment variables. Errors meant for users print as one readable
message (exit code 2), never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")

_overrides: dict = {}


@app.callback()
def _global_options(
    device: str = typer.Option(None, help="auto, cpu, cuda[:N] or mps (STAGING_DEVICE)."),
    models_dir: str = typer.Option(None, help="Models folder(s) (STAGING_MODELS_DIR)."),
    offline: bool = typer.Option(None, "--offline/--online", help="Forbid downloads."),
) -> None:
    _overrides.clear()  # one invocation's flags never leak into the next (tests, REPLs)
    for key, value in {"device": device, "models_dir": models_dir, "offline": offline}.items():
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
    """Every registered model: task, size, licence and whether it is on disk."""
    from staging.models import REGISTRY

    engine = _engine()
    typer.echo(f"models directories: {', '.join(str(d) for d in engine.store.dirs)}")
    typer.echo(f"{'name':24} {'task':9} {'MB':>7}  {'licence':11} status")
    for name, spec in REGISTRY.items():
        status = engine.store.status(name, verify=verify)
        state = f"present {status.path}" if status.present else "missing"
        if status.checksum_ok is False:
            state += " (checksum differs from the registry's file: another build?)"
        elif status.checksum_ok:
            state += " (checksum ok)"
        typer.echo(f"{name:24} {spec.task:9} {spec.size_mb:7.1f}  {spec.licence:11} {state}")


@models_app.command("pull")
def models_pull(
    names: list[str] = typer.Argument(..., help="Model names (see `staging models list`)."),
    force: bool = typer.Option(False, help="Download again even when present."),
) -> None:
    """Download models into the first models directory, verifying checksums."""
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


# -- evaluation and benchmarks ------------------------------------------------------------------
@eval_app.command("segment")
def eval_segment(
    images: Path = typer.Option(..., help="Folder of images."),
    masks: Path = typer.Option(..., help="Folder of ground-truth masks (same file stems)."),
    backend: str = typer.Option(None, help="Backend name (default: auto)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int = typer.Option(0, help="Use only the first N images (0: all)."),
) -> None:
    """Mean IoU, MAE, F-beta (beta^2=0.3), boundary F and seconds per image."""
    from staging.evaluate.segmentation import evaluate_segmentation

    report = evaluate_segmentation(_engine(), images, masks, backend=backend, limit=limit)
    _print_report(report, as_json)


@bench_app.command("segment")
def bench_segment(
    backends: str = typer.Option(None, help="Comma-separated names (default: all available)."),
    sizes: str = typer.Option("512,1024", help="Square sizes to time."),
    repeat: int = typer.Option(10, help="Timed runs per size (after one warm-up)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Latency per available backend at 512x512 and 1024x1024."""
    from staging.evaluate.segmentation import bench_segmentation

    names = [b.strip() for b in backends.split(",")] if backends else None
    sizes_px = [int(s) for s in sizes.split(",")]
    report = bench_segmentation(_engine(), names, sizes_px, repeat=repeat)
    _print_report(report, as_json)


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
