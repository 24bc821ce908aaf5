"""The command line: the same engine calls, readable errors, files on disk."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from staging.cli import app
from staging.io import load_mask, save_image

runner = CliRunner()


def _shots(tmp_path, studio_shot, n=3):
    image, truth = studio_shot
    folder = tmp_path / "in"
    for i in range(n):
        save_image(folder / f"p{i}.png", np.roll(image, 5 * i, axis=1))
    return folder, truth


def test_segment_writes_mask_and_cutout(tmp_path, studio_shot):
    folder, truth = _shots(tmp_path, studio_shot)
    result = runner.invoke(
        app,
        [
            "segment",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--backend",
            "catalog",
            "--save-prob",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 of 3 images segmented" in result.output and "backdrop" in result.output
    mask = load_mask(tmp_path / "out" / "p0.mask.png") > 0.5
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    for stem in ("p0", "p1", "p2"):
        assert (tmp_path / "out" / f"{stem}.cutout.png").is_file()
        assert (tmp_path / "out" / f"{stem}.prob.png").is_file()


def test_segment_keeps_going_past_bad_files(tmp_path, studio_shot):
    folder, _ = _shots(tmp_path, studio_shot, n=1)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    result = runner.invoke(
        app, ["segment", str(folder), "-o", str(tmp_path / "out"), "--backend", "catalog"]
    )
    assert result.exit_code == 1
    assert "1 of 2 images segmented" in result.output
    assert "broken.jpg" in result.output and (tmp_path / "out" / "p0.mask.png").exists()


def test_models_list_and_path(tmp_path):
    (tmp_path / "u2netp.onnx").write_bytes(b"x")
    result = runner.invoke(app, ["--models-dir", str(tmp_path), "models", "list"])
    assert result.exit_code == 0
    line = next(row for row in result.output.splitlines() if row.startswith("u2netp "))
    assert "present" in line and "Apache-2.0" in line
    assert "missing" in next(r for r in result.output.splitlines() if r.startswith("u2net "))
    result = runner.invoke(app, ["--models-dir", str(tmp_path), "models", "path", "u2netp"])
    assert result.output.strip() == str(tmp_path / "u2netp.onnx")


def test_user_errors_are_one_line_not_a_traceback(tmp_path):
    """Through the real console entry point: exit code 2 and the fix in the message."""
    env = {"STAGING_MODELS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "staging", "models", "path", "u2net"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "staging models pull u2net" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_eval_segment_json(tmp_path, studio_shot):
    from staging.io import save_mask

    folder, truth = _shots(tmp_path, studio_shot, n=2)
    masks = tmp_path / "masks"
    for i in range(2):
        save_mask(masks / f"p{i}.png", np.roll(truth, 5 * i, axis=1))
    result = runner.invoke(
        app,
        [
            "eval",
            "segment",
            "--images",
            str(folder),
            "--masks",
            str(masks),
            "--backend",
            "catalog",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["images"] == 2 and report["backend"] == "backdrop"
    assert report["iou"] > 0.9 and report["mae"] < 0.05
    assert set(report) >= {"fbeta", "boundary_f", "seconds_per_image"}


def test_bench_segment_reports_each_size():
    result = runner.invoke(
        app,
        [
            "bench",
            "segment",
            "--backends",
            "catalog,u2netp",
            "--sizes",
            "64,96",
            "--repeat",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert set(report["catalog"]) == {"64px_ms", "96px_ms"}
    assert report["u2netp"] == "weights not present"


def test_parallax_command_writes_a_playable_mp4(tmp_path, studio_shot):
    import imageio_ffmpeg

    image, truth = studio_shot
    save_image(tmp_path / "p.png", image)
    out = tmp_path / "clip.mp4"
    result = runner.invoke(
        app,
        [
            "parallax",
            str(tmp_path / "p.png"),
            "--out",
            str(out),
            "--seconds",
            "0.5",
            "--fps",
            "12",
            "--size",
            "1:1",
            "--inpaint",
            "telea",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 frames" in result.output
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert sum(1 for _ in reader) == 6


def test_bench_parallax_reports_fps():
    result = runner.invoke(
        app,
        ["bench", "parallax", "--sizes", "96", "--seconds", "0.3", "--inpaint", "telea", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["sizes"]["96x96"]["render_encode_fps"] > 0
