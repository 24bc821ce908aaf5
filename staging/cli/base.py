"""The ``staging`` Typer app, its command groups and what every command shares.

The command modules of this package register on these objects; keeping them here (and not in
``staging/cli/__init__.py``) lets each module import them without an import circle. Global
options (``--device``, ``--models-dir``, ``--offline``, ``--lora``) go before the command and
override ``STAGING_*`` environment variables for the engine that ``make_engine`` builds.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

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

# Options several commands declare the same way (Typer copies an option before using it, so
# one object may stand as the default of many parameters).
AS_JSON = typer.Option(False, "--json", help="Print JSON.")
REPORT_JSON = typer.Option(False, "--json", help="Print the report as JSON.")
SUMMARY_JSON = typer.Option(False, "--json", help="Print the summary as JSON.")
INPAINT = typer.Option(None, "--inpaint", help="Inpainting backend (default auto).")
FORMAT = typer.Option("png", "--format", help="png, jpg or webp.")
INPUTS = typer.Argument(..., help="Product photos or folders of them.")
OUT_FOLDER = typer.Option(..., "--out", "-o", help="Output folder.")
FILL = typer.Option(0.6, help="Product share of the canvas's limiting side.")
ALIGN = typer.Option("center", help="center, bottom, bottom-left, ...")
MARGIN = typer.Option(0.05, help="Safe margin, share of the short side.")
SHADOW = typer.Option(True, "--shadow/--no-shadow", help="Contact and cast shadows.")
HARMONIZE = typer.Option(True, help="Nudge the product's colour to the scene.")
PRODUCT_SIZE = typer.Option(None, help="The product's catalog size, width first (80x78 cm).")


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


def make_engine():
    """A ``StagingEngine`` with this invocation's global options (imported late: ``--help``
    stays fast and needs none of the engine's dependencies)."""
    from staging.engine import StagingEngine

    return StagingEngine(**_overrides)


def expand_inputs(inputs: list[Path], list_images) -> list[Path]:
    """Files as given and the images inside given folders; a readable error when none."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(list_images(item))
        else:
            files.append(item)
    if not files:
        raise StagingError("No images found in the given inputs.")
    return files


def split_placements(placement: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated ``--placement`` values as one list (None when none)."""
    if not placement:
        return None
    return [p.strip() for item in placement for p in item.split(",") if p.strip()]


def echo_json(report) -> None:
    """The report as indented JSON, the machine-readable form of every ``--json`` flag."""
    typer.echo(json.dumps(report, indent=2))


def json_or_skipped(report, as_json: bool) -> bool:
    """For ``index`` and ``dataset``: print the report as JSON (True: nothing more to print), or
    the items it skipped, ``skipped <item>: <reason>`` on stderr, before the caller's summary."""
    if as_json:
        echo_json(report.as_dict())
        return True
    for item, reason in report.failed:
        typer.echo(f"skipped {item}: {reason}", err=True)
    return False


def print_report(report: dict, as_json: bool) -> None:
    """A flat report as aligned ``key value`` lines (one level of sub-dicts), or JSON."""
    if as_json:
        echo_json(report)
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
