"""Tests for staging.io's readers: every input kind and pixel mode, the size guard, malformed
input and arrays. The writers and folder listing: test_io_write.py.

All inputs are built here (in memory or under tmp_path), so the suite needs no data files.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from staging.errors import ImageLoadError
from staging.io import (
    load_image,
    load_image_rgba,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but whose pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def pixel(rgb: np.ndarray, x: int = 0, y: int = 0) -> tuple[int, ...]:
    return tuple(int(v) for v in rgb[y, x])


def assert_rgb_image(rgb: np.ndarray, height: int, width: int) -> None:
    assert rgb.dtype == np.uint8
    assert rgb.shape == (height, width, 3)


# ------------------------------------------------------------------------------------------
# Input kinds
# ------------------------------------------------------------------------------------------


def test_path_str_bytes_bytearray_memoryview_filelike_pil_all_agree(tmp_path: Path) -> None:
    image = Image.new("RGB", (5, 3), (10, 20, 30))
    data = encode(image, "PNG")
    path = tmp_path / "img.png"
    path.write_bytes(data)

    with open(path, "rb") as fh:
        from_file = load_image(fh)
        assert not fh.closed  # a caller's file object stays open

    sources = [path, str(path), data, bytearray(data), memoryview(data), io.BytesIO(data)]
    results = [load_image(src) for src in sources] + [from_file, load_image(image)]
    for rgb in results:
        assert_rgb_image(rgb, 3, 5)
        assert pixel(rgb, 4, 2) == (10, 20, 30)


def test_non_seekable_stream_is_buffered() -> None:
    data = encode(Image.new("RGB", (2, 2), (1, 2, 3)), "PNG")

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer) -> int:  # type: ignore[override]
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    assert pixel(load_image(Pipe())) == (1, 2, 3)


def test_result_is_a_new_array() -> None:
    source = np.full((2, 2, 3), 7, np.uint8)
    out = load_image(source)
    out[0, 0] = 0
    assert source[0, 0, 0] == 7


# ------------------------------------------------------------------------------------------
# Pixel modes
# ------------------------------------------------------------------------------------------


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    path = tmp_path / "deep.png"
    image.save(path)
    with Image.open(path) as reopened:
        assert reopened.mode in ("I;16", "I")  # PIL version dependent; both must scale
    rgb = load_image(path)
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_16bit_pil_modes(mode: str) -> None:
    fmt = ">H" if mode == "I;16B" else "<H"
    raw = b"".join(struct.pack(fmt, v) for v in (0, 32768, 65535))
    image = Image.frombytes(mode, (3, 1), raw)
    assert load_image(image)[0, :, 1].tolist() == [0, 128, 255]


def test_32bit_int_mode_holds_16bit_values() -> None:
    image = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32))
    assert image.mode == "I"
    assert load_image(image)[0, :, 0].tolist() == [0, 128, 255]


def test_float_mode_is_unit_range() -> None:
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0, 3.0]], dtype=np.float32))
    assert image.mode == "F"
    assert load_image(image)[0, :, 0].tolist() == [0, 128, 255, 255]


def test_bilevel_and_grey(tmp_path: Path) -> None:
    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    path = tmp_path / "bw.png"
    bilevel.save(path)
    assert load_image(path)[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    assert pixel(load_image(Image.new("L", (1, 1), 77))) == (77, 77, 77)


def test_cmyk_jpeg_pure_cyan(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(path, quality=95)
    r, g, b = pixel(load_image(path), 8, 8)
    assert r <= 10 and g >= 245 and b >= 245


def test_ycbcr_hsv_lab_convert_to_rgb() -> None:
    red_ycbcr = Image.new("YCbCr", (1, 1), (76, 85, 255))
    assert np.abs(np.array(pixel(load_image(red_ycbcr))) - RED).max() <= 2
    assert pixel(load_image(Image.new("HSV", (1, 1), (0, 255, 255)))) == RED
    white_lab = Image.new("LAB", (1, 1), (255, 128, 128))
    assert min(pixel(load_image(white_lab))) >= 250
    black_lab = Image.new("LAB", (1, 1), (0, 128, 128))
    assert max(pixel(load_image(black_lab))) <= 3


def test_rgba_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(255, 0, 0, 255), (255, 0, 0, 0), (0, 0, 0, 128)])
    rgb = load_image(rgba)
    assert pixel(rgb, 0) == RED
    assert pixel(rgb, 1) == (255, 255, 255)
    half = round(255 * (1 - 128 / 255))  # black at alpha 128 on white
    assert pixel(rgb, 2) == (half, half, half)


def test_la_and_premultiplied_modes() -> None:
    la = Image.new("LA", (1, 1), (100, 128))
    expected = round(100 * 128 / 255 + 255 * (1 - 128 / 255))
    assert pixel(load_image(la)) == (expected,) * 3

    # Premultiplied: stored colour 64 at alpha 128 means straight colour ~128.
    rgb, alpha = load_image_rgba(Image.new("La", (1, 1), (64, 128)))
    assert alpha is not None and alpha[0, 0] == pytest.approx(128 / 255)
    straight = 64 / (128 / 255)
    assert abs(pixel(rgb)[0] - (straight * 128 / 255 + 255 * 127 / 255)) <= 1

    rgb, alpha = load_image_rgba(Image.new("RGBa", (1, 1), (100, 0, 0, 128)))
    assert alpha is not None
    r, g, b = pixel(rgb)
    assert abs(r - (100 + 127)) <= 2 and abs(g - 127) <= 1 and abs(b - 127) <= 1


def test_palette_with_transparency_composites_on_white(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    for fmt in ("PNG", "GIF"):
        path = tmp_path / f"pal.{fmt.lower()}"
        image.save(path, transparency=1)
        rgb, alpha = load_image_rgba(path)
        assert pixel(rgb, 0) == RED
        assert pixel(rgb, 1) == (255, 255, 255), fmt
        assert alpha is not None and alpha[0].tolist() == [1.0, 0.0]


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (1, 1))
    image.putpalette([0, 0, 255] + [0] * 765)
    path = tmp_path / "pal.png"
    image.save(path)
    rgb, alpha = load_image_rgba(path)
    assert pixel(rgb) == BLUE and alpha is None


def test_grey_with_trns_transparency(tmp_path: Path) -> None:
    path = tmp_path / "grey_trns.png"
    Image.new("L", (2, 2), 5).save(path, transparency=5)
    rgb, alpha = load_image_rgba(path)
    assert alpha is not None and float(alpha.max()) == 0.0
    assert pixel(rgb) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_gives_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    path = tmp_path / f"anim.{fmt.lower()}"
    options = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, **options)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 2
    r, g, b = pixel(load_image(path), 4, 4)
    assert r >= 250 and g <= 5 and b <= 5


def test_exif_orientation_6_rotates(tmp_path: Path) -> None:
    # Stored 32 wide x 16 tall: left half red, right half blue.
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16] = RED
    stored[:, 16:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)

    rgb = load_image(path)
    assert_rgb_image(rgb, 32, 16)  # now portrait
    top, bottom = pixel(rgb, 8, 4), pixel(rgb, 8, 28)
    assert top[0] > 200 and top[2] < 60  # the left (red) side is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_load_image_rgba_reports_only_real_alpha() -> None:
    opaque = Image.new("RGBA", (2, 2), (1, 2, 3, 255))
    rgb, alpha = load_image_rgba(opaque)
    assert alpha is None and pixel(rgb) == (1, 2, 3)

    rgb, alpha = load_image_rgba(Image.new("RGB", (2, 2), (1, 2, 3)))
    assert alpha is None

    cutout = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    cutout.putpixel((0, 0), (0, 255, 0, 255))
    rgb, alpha = load_image_rgba(cutout)
    assert alpha is not None and alpha.dtype == np.float32
    assert alpha.tolist() == [[1.0, 0.0]]
    assert pixel(rgb, 0) == (0, 255, 0) and pixel(rgb, 1) == (255, 255, 255)
    assert np.array_equal(rgb, load_image(cutout))  # same RGB as load_image


# ------------------------------------------------------------------------------------------
# Size guard
# ------------------------------------------------------------------------------------------


def test_max_pixels_checked_before_decoding(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (3000, 3000), (9, 9, 9)).save(path, compress_level=1)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageLoadError) as info:
        load_image(path, max_pixels=1_000_000)
    message = str(info.value)
    assert "big.png" in message
    assert "3000x3000 = 9 megapixels" in message
    assert "1-megapixel limit" in message and "STAGING_MAX_PIXELS" in message


def test_header_claiming_huge_size_is_refused() -> None:
    # 8000 x 8000 = 64 MP: over our 60 MP default, under PIL's own bomb limit.
    with pytest.raises(ImageLoadError, match=r"8000x8000 = 64 megapixels, over the 60-megapixel"):
        load_image(png_header_only(8000, 8000))
    # 20000 x 20000 = 400 MP: PIL's DecompressionBombError fires inside Image.open.
    with pytest.raises(ImageLoadError, match=r"400 megapixels, over the 60-megapixel limit"):
        load_image(png_header_only(20000, 20000))
    # ... and caps a limit set above it (PIL's limit is process-wide; we leave it alone).
    with pytest.raises(ImageLoadError, match=r"400 megapixels, over Pillow's 179-megapixel"):
        load_image(png_header_only(20000, 20000), max_pixels=500_000_000)
    # The same header under a generous limit reaches the decoder, which finds it truncated.
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(png_header_only(100, 100))


def test_max_pixels_applies_to_arrays() -> None:
    with pytest.raises(ImageLoadError, match="10x10 = 0.0001 megapixels"):
        load_image(np.zeros((10, 10, 3), np.uint8), max_pixels=50)


# ------------------------------------------------------------------------------------------
# Malformed input
# ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"^No such file: '.*nope\.jpg'"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="it is a folder, not an image"):
        load_image(tmp_path)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "foo.jpg"
    path.write_text("hello, I am not a picture\n")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert str(info.value) == f"Cannot read '{path}': it is not an image file (or it is corrupt)."


def test_empty_file_and_empty_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.png': the file is empty"):
        load_image(path)
    with pytest.raises(ImageLoadError, match=r"empty \(0 bytes\)"):
        load_image(b"")
    with pytest.raises(ImageLoadError, match=r"empty \(0 bytes\)"):
        load_image(io.BytesIO())


def test_garbage_bytes() -> None:
    with pytest.raises(ImageLoadError, match="not an image file"):
        load_image(b"not an image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_raise(tmp_path: Path, fmt: str) -> None:
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    for cut in (len(data) // 2, len(data) - 40):  # -40: inside the pixel data
        path.write_bytes(data[:cut])
        with pytest.raises(ImageLoadError, match="truncated or corrupt") as info:
            load_image(path)
        assert path.name in str(info.value)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageLoadError, match="value of type int"):
        load_image(42)  # type: ignore[arg-type]


def test_eps_is_not_decoded() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ImageLoadError, match="not an image file"):
        load_image(eps)


# ------------------------------------------------------------------------------------------
# Arrays
# ------------------------------------------------------------------------------------------


def test_array_dtypes() -> None:
    assert pixel(load_image(np.full((1, 1, 3), 200, np.uint8))) == (200, 200, 200)
    assert load_image(np.array([[0, 32768, 65535]], np.uint16))[0, :, 0].tolist() == [0, 128, 255]
    assert load_image(np.array([[False, True]]))[0, :, 0].tolist() == [0, 255]
    floats = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]], np.float64)
    assert load_image(floats)[0, :, 0].tolist() == [0, 0, 128, 255, 255, 0]
    assert load_image(floats.astype(np.float16))[0, 2, 0] == 128
    assert load_image(np.array([[0, 100, 255]], np.int64))[0, :, 0].tolist() == [0, 100, 255]
    assert load_image(np.array([[0, 300, 65535]], np.int32))[0, :, 0].tolist() == [0, 1, 255]


def test_array_shapes() -> None:
    grey = np.array([[10, 20]], np.uint8)
    assert load_image(grey).tolist() == [[[10, 10, 10], [20, 20, 20]]]
    assert load_image(grey[..., None]).tolist() == [[[10, 10, 10], [20, 20, 20]]]
    colour = np.array([[[1, 2, 3]]], np.uint8)
    assert load_image(colour).tolist() == [[[1, 2, 3]]]

    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 0, 128]]], np.uint8)
    rgb, alpha = load_image_rgba(rgba)
    assert rgb.tolist() == [[[255, 0, 0], [255, 255, 255], [127, 127, 127]]]
    assert alpha is not None and alpha[0, 1] == 0.0

    float_rgba = np.zeros((1, 1, 4), np.float32)
    float_rgba[..., 3] = 0.25
    rgb, alpha = load_image_rgba(float_rgba)
    assert alpha is not None and alpha[0, 0] == pytest.approx(0.25)
    assert pixel(rgb) == (191, 191, 191)  # 0.75 * 255 = 191.25


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((4,), np.uint8), "shape (4,)"),
        (np.zeros((2, 2, 2), np.uint8), "shape (2, 2, 2)"),
        (np.zeros((1, 2, 2, 3), np.uint8), "shape (1, 2, 2, 3)"),
        (np.zeros((0, 5, 3), np.uint8), "empty array"),
        (np.full((2, 2), np.nan, np.float32), "every value is NaN"),
        (np.array([[-5, 10]], np.int32), "from -5 to 10"),
        (np.array([[0, 70000]], np.int64), "from 0 to 70000"),
        (np.zeros((2, 2), np.complex64), "dtype complex64"),
        (np.zeros((2, 2), object), "dtype object"),
    ],
)
def test_bad_arrays(array: np.ndarray, fragment: str) -> None:
    with pytest.raises(ImageLoadError) as info:
        load_image(array)
    assert fragment in str(info.value)
