"""The ``staging`` command line: the same engine calls as the app and the Python API.

Global options (``--device``, ``--models-dir``, ``--offline``) go before the command and
override ``STAGING_*`` environment variables. Errors meant for users print as one readable
message (exit code 2), never as a traceback.

The Typer app and its groups live in ``staging.cli.base``; each module below registers one
group's commands on them, and importing them here, in this order, fixes the order ``--help``
lists them in. The command functions stay importable from ``staging.cli`` as before.
"""

from __future__ import annotations

import sys

import typer

from staging.cli.base import app
from staging.errors import StagingError

# The import order below is the order `staging --help` lists the top-level commands in.
# isort: off
from staging.cli.models import models_list, models_path, models_pull
from staging.cli.segment import is_staged, segment
from staging.cli.catalog import index_catalog, search
from staging.cli.eval import (
    eval_clip_score,
    eval_copy_paste,
    eval_inpaint,
    eval_realism,
    eval_retrieval,
    eval_segment,
)
from staging.cli.bench import (
    bench_bandit_command,
    bench_buckets_command,
    bench_copy_paste_command,
    bench_parallax_command,
    bench_retrieval,
    bench_segment,
    bench_serve_command,
)
from staging.cli.stage import (
    parallax_command,
    stage_copy_paste_command,
    stage_in_scene_command,
    stage_prompt_command,
    stage_vanilla_command,
)
from staging.cli.serve import batch_command, serve_command, worker_command
from staging.cli.train import (
    dataset_command,
    train_inpaint_command,
    train_pix2pix_command,
    train_sd_outpaint_command,
)

# isort: on

__all__ = [
    "app",
    "batch_command",
    "bench_bandit_command",
    "bench_buckets_command",
    "bench_copy_paste_command",
    "bench_parallax_command",
    "bench_retrieval",
    "bench_segment",
    "bench_serve_command",
    "dataset_command",
    "eval_clip_score",
    "eval_copy_paste",
    "eval_inpaint",
    "eval_realism",
    "eval_retrieval",
    "eval_segment",
    "index_catalog",
    "is_staged",
    "main",
    "models_list",
    "models_path",
    "models_pull",
    "parallax_command",
    "search",
    "segment",
    "serve_command",
    "stage_copy_paste_command",
    "stage_in_scene_command",
    "stage_prompt_command",
    "stage_vanilla_command",
    "train_inpaint_command",
    "train_pix2pix_command",
    "train_sd_outpaint_command",
    "worker_command",
]


def main() -> None:
    """Console-script entry point: user errors print as one line, exit code 2."""
    try:
        app()
    except StagingError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
