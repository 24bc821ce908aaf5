"""Tests for staging.io's writers (``to_pil``, ``save_image``, ``save_mask``, the atomic
writes), masks read back with ``load_mask``, and ``list_images`` on folders. The readers:
test_io.py.

All inputs are built here (in memory or under tmp_path), so the suite needs no data files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from staging.errors import ImageLoadError, StagingError
from staging.io import (
    list_images,
    load_image,
    load_image_rgba,
    load_mask,
    save_image,
    save_mask,
    to_pil,
)

# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def test_to_pil_modes() -> None:
    assert to_pil(np.zeros((2, 3, 3), np.uint8)).mode == "RGB"
    assert to_pil(np.zeros((2, 3, 4), np.uint8)).mode == "RGBA"
    mask = to_pil(np.array([[True, False]]))
    assert mask.mode == "L" and np.asarray(mask).ravel().tolist() == [255, 0]
    prob = to_pil(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert prob.mode == "L" and np.asarray(prob).ravel().tolist() == [0, 128, 255]
    assert to_pil(np.zeros((2, 2, 1), np.uint8)).size == (2, 2)
    with pytest.raises(ImageLoadError):
        to_pil(np.zeros((2, 2, 5), np.uint8))


def test_save_image_round_trips_and_creates_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    png = save_image(tmp_path / "a" / "b" / "out.png", image)
    assert png == tmp_path / "a" / "b" / "out.png"
    assert np.array_equal(load_image(png), image)

    flat = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    for name in ("out.jpg", "out.JPEG", "out.webp"):
        back = load_image(save_image(tmp_path / name, flat, quality=95))
        assert np.abs(back.astype(int) - flat).max() <= 4, name
    # Nothing but the outputs: no temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "out.JPEG", "out.jpg", "out.webp"]


def test_save_image_rgba_png_keeps_alpha_jpeg_goes_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    rgb, alpha = load_image_rgba(save_image(tmp_path / "cut.png", rgba))
    assert alpha is not None and float(alpha.max()) == 0.0
    jpeg = load_image(save_image(tmp_path / "cut.jpg", rgba))
    assert jpeg.min() >= 250  # white, not red


def test_save_image_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(StagingError, match=r"\.gif"):
        save_image(tmp_path / "x.gif", np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_save_image_is_atomic(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "keep.png"
    original = np.full((4, 4, 3), 42, np.uint8)
    save_image(target, original)
    before = target.read_bytes()

    def crash_midway(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half a file")
        raise KeyboardInterrupt  # a crash, not a polite error

    monkeypatch.setattr(Image.Image, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_image(target, np.zeros((4, 4, 3), np.uint8))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]  # no temp file left


def test_saved_file_has_normal_permissions(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions only")
    umask = os.umask(0o022)
    try:
        path = save_image(tmp_path / "perm.png", np.zeros((2, 2, 3), np.uint8))
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_save_mask_and_load_mask_round_trip(tmp_path: Path) -> None:
    mask = np.array([[True, False], [False, True]])
    path = save_mask(tmp_path / "m.png", mask)
    with Image.open(path) as saved:
        assert saved.mode == "L" and np.asarray(saved).ravel().tolist() == [255, 0, 0, 255]
    loaded = load_mask(path)
    assert loaded.dtype == np.float32 and loaded.tolist() == [[1.0, 0.0], [0.0, 1.0]]

    prob = np.array([[0.0, 0.2, 0.5, 1.0, 1.7]], np.float32)
    path = save_mask(tmp_path / "p.png", prob)
    with Image.open(path) as saved:
        assert np.asarray(saved).ravel().tolist() == [0, 51, 128, 255, 255]
    assert np.allclose(load_mask(path), [[0, 51 / 255, 128 / 255, 1, 1]])


def test_load_mask_sources(tmp_path: Path) -> None:
    cutout = np.zeros((2, 2, 4), np.uint8)
    cutout[..., :3] = 30  # dark colour: luminance would say ~0.12
    cutout[0, 0, 3] = 255
    cutout[1, 1, 3] = 51
    assert load_mask(cutout).tolist() == [[1.0, 0.0], [0.0, pytest.approx(0.2)]]

    colour = np.zeros((1, 1, 3), np.uint8)
    colour[..., 1] = 255  # pure green: luminance 0.587
    assert load_mask(colour)[0, 0] == pytest.approx(0.587, abs=1e-3)

    exact = np.array([[0.123456, 0.5]], np.float32)  # float masks are not quantised
    assert np.array_equal(load_mask(exact), exact)
    assert load_mask(np.array([[True, False]])).tolist() == [[1.0, 0.0]]


def test_load_mask_resizes_to_width_height(tmp_path: Path) -> None:
    mask = np.zeros((4, 8), np.float32)
    mask[:, 4:] = 1.0
    path = save_mask(tmp_path / "m.png", mask)
    resized = load_mask(path, size=(16, 2))
    assert resized.shape == (2, 16) and resized.dtype == np.float32
    assert resized[:, 0].max() == 0.0 and resized[:, -1].min() == 1.0
    middle = resized[0, 7:9]
    assert 0.0 < middle.min() < 1.0  # bilinear: a soft step, not nearest-neighbour
    assert load_mask(path, size=(8, 4)).shape == (4, 8)


# ------------------------------------------------------------------------------------------
# Folders
# ------------------------------------------------------------------------------------------


def test_list_images(tmp_path: Path) -> None:
    for rel in [
        "b.png",
        "a.JPG",
        "notes.txt",
        ".hidden.png",
        "sub/c.webp",
        "sub/deeper/d.tiff",
        ".git/e.png",
        "sub/f.gif",
        "sub/g.bmp",
        "sub/h.jpeg",
        "sub/i.tif",
    ]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == [
        "a.JPG",
        "b.png",
        "sub/c.webp",
        "sub/deeper/d.tiff",
        "sub/f.gif",
        "sub/g.bmp",
        "sub/h.jpeg",
        "sub/i.tif",
    ]
    flat = [p.name for p in list_images(str(tmp_path), recursive=False)]
    assert flat == ["a.JPG", "b.png"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    with pytest.raises(ImageLoadError, match="No such folder"):
        list_images(tmp_path / "missing")


def test_atomic_write_replaces_whole_files_and_leaves_nothing_behind_on_error(tmp_path):
    from staging.io import atomic_path, atomic_write

    target = tmp_path / "sub" / "state.json"
    assert atomic_write(target, lambda fh: fh.write(b"old")) == target  # folders are made

    def crash(fh):
        fh.write(b"half")
        raise RuntimeError("killed halfway")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old" and os.listdir(target.parent) == ["state.json"]
    with atomic_path(tmp_path / "clip.mp4", fsync=False, suffix=".mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".clip.") and tmp.suffix == ".mp4"
        tmp.write_bytes(b"video")
    assert (tmp_path / "clip.mp4").read_bytes() == b"video" and not tmp.exists()
