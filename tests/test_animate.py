"""Parallax animation (staging.animate): motion paths, layers and frames, video files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from staging.animate import (
    MOTIONS,
    ParallaxRenderer,
    build_layers,
    create_motion,
    parallax,
    parse_size,
    phases,
    prepare,
    write_video,
)
from staging.animate.render import margin_for
from staging.errors import StagingError, UnknownNameError
from staging.inpaint.opencv import OpenCVInpainter

INPAINT = OpenCVInpainter("telea").inpaint  # fast; the layer logic does not depend on it
STRENGTH = 0.05


def scene(h: int = 120, w: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A blue-green textured background (never red) with a red product blob, and its mask."""
    rng = np.random.default_rng(seed)
    low = rng.integers(40, 200, (h // 8, w // 8, 3)).astype(np.uint8)
    low[..., 0] = low[..., 0] // 3  # little red in the background
    image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2 + 5), (w // 8, h // 5), 0, 0, 360, 1, -1)
    mask = mask.astype(bool)
    image[mask] = (220, 30, 30)
    return image, mask


def red(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.int16)
    return (f[..., 0] > 150) & (f[..., 1] < 90) & (f[..., 2] < 90)


def centroid(frame: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(red(frame))
    return np.array([xs.mean(), ys.mean()])


def background_shift(a: np.ndarray, b: np.ndarray, reach: int = 12) -> int:
    """Horizontal shift (whole pixels) of the top band, far from the product, from a to b."""
    band = slice(0, a.shape[0] // 5)
    ga = a[band].astype(np.float64)
    gb = b[band].astype(np.float64)
    w = a.shape[1]
    errors = {
        d: np.abs(ga[:, reach : w - reach] - gb[:, reach + d : w - reach + d]).mean()
        for d in range(-reach, reach + 1)
    }
    return abs(min(errors, key=errors.get))


def decode(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3).copy() for b in reader]
    return meta, frames


# -- motion paths ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MOTIONS))
def test_motions_are_periodic_and_product_moves_more(name):
    motion = create_motion(name)
    for p in (0.0, 0.13, 0.5):
        now, later = motion.poses(p, 0.04), motion.poses(p + 1.0, 0.04)
        for a, b in zip(now, later, strict=True):
            assert (a.dx, a.dy, a.scale) == pytest.approx((b.dx, b.dy, b.scale))
    fg, bg = zip(*(motion.poses(p, 0.04) for p in np.linspace(0, 1, 64)), strict=True)
    travel = lambda poses: max(abs(q.dx) + abs(q.dy) + abs(q.scale - 1) for q in poses)  # noqa: E731
    assert travel(fg) > 2 * travel(bg) > 0


def test_unknown_motion_and_phases():
    with pytest.raises(UnknownNameError, match="pan"):
        create_motion("spin")
    assert phases(4).tolist() == [0, 0.25, 0.5, 0.75]  # frame 4 would be frame 0
    assert phases(3, loop=False).tolist() == [0, 0.25, 0.5]


def test_parse_size():
    assert parse_size("1080x1350") == (1080, 1350)
    assert parse_size("9:16") == (1080, 1920)
    assert parse_size((101, 77)) == (100, 76)  # even for yuv420p
    assert parse_size(None, (2000, 3000, 3)) == (1080, 720)
    with pytest.raises(StagingError, match="WIDTHxHEIGHT"):
        parse_size("big")


# -- layers and frames ---------------------------------------------------------------------------
def renderer_for(motion="pan", size=(160, 120), fit="auto") -> ParallaxRenderer:
    image, mask = scene()
    return prepare(image, mask, INPAINT, motion, STRENGTH, size, fit)


def test_layers_remove_the_product_from_the_background():
    image, mask = scene()
    mot = create_motion("pan")
    layers = build_layers(image, mask, (160, 120), INPAINT, margin_for(mot, STRENGTH, (160, 120)))
    assert layers.fit == "cover"
    assert not red(layers.background).any()  # the hole was filled, no ghost product
    assert layers.hole.sum() > mask.sum()  # dilated footprint
    assert layers.sprite.dtype == np.uint8 and layers.sprite.shape[2] == 4
    alpha = layers.sprite[..., 3]
    assert alpha.max() == 255 and ((alpha > 0) & (alpha < 255)).any()  # soft edge
    assert (layers.sprite[..., :3] <= alpha[..., None]).all()  # premultiplied


@pytest.mark.parametrize("motion", list(MOTIONS))
def test_frames_have_no_hole_and_loop_seamlessly(motion):
    renderer = renderer_for(motion)
    frames = [f.copy() for f in renderer.frames(24)]
    area = red(frames[0]).sum() / renderer.poses(0.0)[0].scale ** 2  # at scale 1
    for p, f in zip(phases(24), frames, strict=True):
        assert f.shape == (120, 160, 3) and f.dtype == np.uint8
        # Exactly one product, whole: no uncovered hole, no ghost left behind.
        grow = renderer.poses(p)[0].scale ** 2
        assert 0.9 * area * grow <= red(f).sum() <= 1.1 * area * grow
        n, _labels = cv2.connectedComponents(red(f).astype(np.uint8))
        assert n == 2
        assert f.min(axis=2).max() > 0 and (f.max(axis=2) > 10).all()  # no black
    step = max(np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:], strict=False))
    seam = np.abs(frames[-1].astype(int) - frames[0]).mean()
    assert seam <= 1.5 * step
    wrapped = renderer.frame(1.0).astype(int)
    assert np.abs(wrapped - frames[0]).max() <= 1  # phase 1 is phase 0 again


def test_product_moves_more_than_background():
    renderer = renderer_for("pan")
    a, b = renderer.frame(0.0).copy(), renderer.frame(0.5).copy()  # the two extremes
    product = abs(centroid(b)[0] - centroid(a)[0])
    expected = 2 * STRENGTH * 120
    assert product == pytest.approx(expected, rel=0.15)
    back = background_shift(a, b)
    assert back == pytest.approx(expected * create_motion("pan").depth, abs=1)
    assert back < 0.5 * product


def test_pad_fit_when_product_fills_the_frame():
    image, mask = scene()
    renderer = prepare(image, mask, INPAINT, "zoom", STRENGTH, (40, 120))
    assert renderer.layers.fit == "pad"
    frame = renderer.frame(0.25)
    assert frame.shape == (120, 40, 3)
    assert red(frame).any()


def test_empty_mask_is_an_error():
    image, _ = scene()
    with pytest.raises(StagingError, match="empty"):
        prepare(image, np.zeros(image.shape[:2], bool), INPAINT)


# -- files ---------------------------------------------------------------------------------------
def test_mp4_is_browser_ready(tmp_path):
    image, mask = scene()
    clip = parallax(
        image, tmp_path / "clip.mp4", mask, INPAINT, seconds=1, fps=24, strength=STRENGTH
    )
    assert clip.path.name == "clip.mp4" and clip.frames == 24
    meta, frames = decode(clip.path)
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (160, 120) and meta["fps"] == 24
    assert len(frames) == 24
    data = clip.path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # faststart
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary left
    # The product swings; the background moves less.
    xs = [centroid(f)[0] for f in frames]
    assert max(xs) - min(xs) > 0.8 * 2 * STRENGTH * 120
    half = len(frames) // 2
    assert background_shift(frames[0], frames[half]) < 0.5 * (max(xs) - min(xs))
    # Seamless loop and no hole, after lossy coding too.
    step = max(np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:], strict=False))
    assert np.abs(frames[-1].astype(int) - frames[0]).mean() <= 1.5 * step
    area = red(frames[0]).sum()
    for f in frames:
        assert abs(int(red(f).sum()) - int(area)) <= 0.15 * area


@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "vp9"), (".gif", "gif")])
def test_webm_and_gif(tmp_path, suffix, codec):
    image, mask = scene()
    clip = parallax(image, tmp_path / f"c{suffix}", mask, INPAINT, seconds=0.5, fps=20,
                    motion="orbit", size=(96, 96))  # fmt: skip
    meta, frames = decode(clip.path)
    assert meta["codec"].startswith(codec)
    assert meta["size"] == (96, 96)
    assert len(frames) == 10


def test_write_is_atomic(tmp_path):
    def broken():
        yield np.zeros((32, 32, 3), np.uint8)
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError):
        write_video(tmp_path / "x.mp4", broken(), 10, (32, 32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StagingError, match="mp4"):
        write_video(tmp_path / "x.avi", [], 10, (32, 32))


def test_bench_parallax_runs():
    from staging.evaluate.bench_parallax import bench_parallax

    report = bench_parallax(OpenCVInpainter("telea"), sizes=(64,), seconds=0.2, fps=20)
    row = report["sizes"]["64x64"]
    assert row["render_fps"] > 0 and row["render_encode_fps"] > 0


def test_parallax_reports_progress(tmp_path):
    """The app shows a progress bar while a clip renders: fractions rise from 0 to 1."""
    from staging import StagingEngine

    image = np.full((96, 96, 3), 180, np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[30:80, 35:60] = True
    image[mask] = (200, 40, 30)
    seen: list[float] = []
    StagingEngine(device="cpu").parallax(
        image,
        tmp_path / "clip.mp4",
        mask=mask,
        seconds=1,
        fps=24,
        progress=lambda fraction, message: seen.append(fraction),
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 4
