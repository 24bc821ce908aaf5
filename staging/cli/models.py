"""``staging models``: list, download and locate the pretrained models of the registry."""

from __future__ import annotations

import typer

from staging.cli.base import make_engine, models_app


@models_app.command("list")
def models_list(
    verify: bool = typer.Option(False, help="Also check the checksums of present files."),
) -> None:
    """Every registered model: task, size, licence, whether it is on disk, and its sources
    (tried in order by `staging models pull`) with each source's licence."""
    from staging.models import REGISTRY

    engine = make_engine()
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
    engine = make_engine()
    for name in names:
        path = engine.store.pull(name, force=force)
        typer.echo(f"{name}: {path}")


@models_app.command("path")
def models_path(name: str) -> None:
    """Print where a model's files are (exit 2 with instructions when missing)."""
    engine = make_engine()
    typer.echo(str(engine.store.path(name)))
