"""Text tables of the benchmark reports, kept apart from the commands that run them.

Each function turns one report (the dict that ``--json`` prints) into the lines the command
prints without ``--json``, so a command body is: run, then ``print_table(report, as_json,
<table>)``, and the layout of each table is in one place.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from staging.cli.base import echo_json


def print_table(report: dict, as_json: bool, table: Callable[[dict], list[str]]) -> None:
    """The report as JSON, or as the lines ``table`` makes of it."""
    if as_json:
        echo_json(report)
        return
    for line in table(report):
        typer.echo(line)


def retrieval_table(report: dict) -> list[str]:
    """``bench retrieval``: one row per index kind (and HNSW setting)."""
    recall = f"recall@{report['k']}"
    lines = [
        f"{report['n']} x {report['dim']}-d, {report['queries']} queries, k={report['k']}, "
        f"{report['clusters']} clusters; build on {report['build_threads']} threads, "
        f"queries on {report['query_threads']}",
        f"{'index':8} {'M':>3} {'efC':>4} {'efS':>4} {'build s':>8} {'index MiB':>9} "
        f"{'RSS MiB':>8} {'p50 ms':>7} {'p99 ms':>7} {recall:>9}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['index']:8} {r['M'] or '-':>3} {r['efConstruction'] or '-':>4} "
            f"{r['efSearch'] or '-':>4} {r['build_seconds']:8.1f} "
            f"{r['index_bytes'] / 2**20:9.0f} {r['rss_bytes'] / 2**20:8.0f} "
            f"{r['p50_ms']:7.3f} {r['p99_ms']:7.3f} {r[recall]:9.4f}"
        )
    return lines


def parallax_table(report: dict) -> list[str]:
    """``bench parallax``: one row per clip size."""
    lines = [
        f"{report['frames']} frames, {report['motion']}, inpainter {report['inpainter']}, "
        f"{report['cpus']} CPUs",
        f"{'size':>10} {'prepare s':>9} {'render fps':>10} {'+encode fps':>11} {'KiB':>7}",
    ]
    for name, r in report["sizes"].items():
        lines.append(
            f"{name:>10} {r['prepare_s']:9.2f} {r['render_fps']:10.1f} "
            f"{r['render_encode_fps']:11.1f} {r['file_kib']:7.0f}"
        )
    return lines


def bandit_table(report: dict) -> list[str]:
    """``bench bandit``: cumulative regret per policy at the report's checkpoints."""
    header = "".join(f"{m:>9}" for m in report["checkpoints"])
    lines = [
        f"{report['rounds']} rounds x {report['repeats']} worlds, {len(report['arms'])} themes, "
        f"{report['features']} features, alpha {report['alpha']:g}, eps {report['epsilon']:g}",
        f"{'cumulative regret':18}{header}{'CTR':>8}{'best %':>8}",
    ]
    for policy, curve in report["regret"].items():
        name = policy + (" *" if policy == "best-fixed" else "")
        lines.append(
            f"{name:18}"
            + "".join(f"{v:9.1f}" for v in curve)
            + f"{report['ctr'][policy]:8.4f}{100 * report['last_share_best'][policy]:7.0f}%"
        )
    lines.append(
        f"winner: {report['winner']} (final regret {report['regret_vs_random']:.2f} x random's)"
        "\n* oracle reference: the single best theme, known in advance; 'best %': share of the "
        "last 10% of rounds that chose the truly best theme"
    )
    return lines


def studio_table(report: dict) -> list[str]:
    """``bench studio``: one row per photo, then the median and the slowest."""
    lines = [f"{'photo':32} {'mask s':>7} {'grid s':>7} {'total s':>8}  results"]
    for r in report["rows"]:
        made = ", ".join(f"{mode} {n}" for mode, n in r["results"].items())
        lines.append(
            f"{r['photo'][:32]:32} {r['mask_seconds']:7.2f} {r['grid_seconds']:7.2f} "
            f"{r['total_seconds']:8.2f}  {made}"
        )
    lines.append(
        f"median {report['median_total_seconds']} s, slowest {report['max_total_seconds']} s "
        f"from photo to grid (k={report['k']}, {report['photos']} photos)"
    )
    return lines
