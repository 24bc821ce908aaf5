"""``staging segment`` and ``staging is-staged``: product masks and the staged / plain verdict
for images or folders of images."""

from __future__ import annotations

from pathlib import Path

import typer
from tqdm import tqdm

from staging.cli.base import OUT_FOLDER, app, expand_inputs, make_engine
from staging.errors import StagingError


@app.command("segment")
def segment(
    inputs: list[Path] = typer.Argument(..., help="Images or folders of images."),
    out: Path = OUT_FOLDER,
    backend: str = typer.Option(None, help="Backend name (default: auto)."),
    threshold: float = typer.Option(None, help="Mask threshold (default 0.5)."),
    save_prob: bool = typer.Option(False, help="Also write the probability map."),
) -> None:
    """Write <name>.mask.png and <name>.cutout.png (RGBA) for each image."""
    from staging.io import list_images, save_mask

    engine = make_engine()
    files = expand_inputs(inputs, list_images)
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

    engine = make_engine()
    for path in expand_inputs(inputs, list_images):
        try:
            verdict = engine.is_staged(path)
        except StagingError as exc:
            typer.echo(f"{path}\terror: {exc}")
            continue
        label = "staged" if verdict.staged else "unstaged"
        typer.echo(f"{path}\t{label}\tconfidence {verdict.confidence:.2f}")
