"""Video files from frames, through the ``ffmpeg`` that ships inside ``imageio-ffmpeg``.

The format follows the file extension:

=========  ==================================================================================
``.mp4``   H.264 (libx264), yuv420p, ``+faststart`` (the index first, so a browser starts
           playing before the download ends); preset ``veryfast``, CRF 20
``.webm``  VP9 (libvpx-vp9), yuv420p, constant quality (CRF 32), realtime speed, row threads
``.gif``   one palette for the whole clip (``palettegen`` on every frame), Bayer dithering
           (ordered dithering does not crawl from frame to frame like error diffusion),
           infinite loop
=========  ==================================================================================

Frames stream to ffmpeg through a pipe while the next ones are rendered (ffmpeg encodes in
its own process, on the other core). The file is written atomically: to a hidden temporary
sibling that is renamed over the target only when ffmpeg has finished without error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from staging.errors import StagingError
from staging.io import atomic_path

VIDEO_FORMATS = (".mp4", ".webm", ".gif")

MP4_PRESET = "veryfast"
MP4_CRF = 20
WEBM_CRF = 32


_CODECS = {
    ".mp4": ("libx264", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "pal8"),
}
"""Each format's encoder and output pixel format."""


def _ffmpeg_options(suffix: str, fps: float) -> dict:
    """The ``imageio_ffmpeg.write_frames`` options of a format (see the module doc)."""
    if suffix not in _CODECS:
        raise StagingError(
            f"Unsupported video format {suffix or '(none)'!r}: use {', '.join(VIDEO_FORMATS)}."
        )
    params = {
        ".mp4": [
            "-preset", MP4_PRESET,
            "-crf", str(MP4_CRF),
            "-profile:v", "high",
            "-g", str(max(1, round(2 * fps))),
            "-movflags", "+faststart",
        ],
        ".webm": [
            "-crf", str(WEBM_CRF),
            "-b:v", "0",
            "-deadline", "realtime",
            "-cpu-used", "8",
            "-row-mt", "1",
        ],
        ".gif": [
            "-vf", "split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=bayer",
            "-loop", "0",
        ],
    }  # fmt: skip
    codec, pixels = _CODECS[suffix]
    return {"codec": codec, "pix_fmt_out": pixels, "output_params": params[suffix]}


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise StagingError(
            "Writing videos needs imageio-ffmpeg: pip install imageio-ffmpeg"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    size: tuple[int, int],
) -> Path:
    """Encode ``frames`` (RGB uint8, all ``size`` = (width, height), even) to ``path``.

    The format comes from the extension (see the module doc); folders are created; the write
    is atomic. Returns the path written.
    """
    import imageio_ffmpeg

    target = Path(os.fspath(path))
    suffix = target.suffix.lower()
    options = _ffmpeg_options(suffix, fps)
    width, height = size
    if suffix != ".gif" and (width % 2 or height % 2):
        raise StagingError(f"{suffix} needs even dimensions, got {width}x{height}.")
    ffmpeg_exe()
    # Keep the real extension last: ffmpeg picks the container from it.
    with atomic_path(target, fsync=False, suffix=suffix) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            **options,
        )
        try:
            _encode(writer, frames, target, (width, height))
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            raise
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise StagingError(f"ffmpeg failed to write {target} (see its message above).")
    return target


def _encode(writer, frames: Iterable[np.ndarray], target: Path, size: tuple[int, int]) -> None:
    """Send every frame to the running ffmpeg ``writer`` and wait for it to finish the file."""
    width, height = size
    count = 0
    writer.send(None)  # start ffmpeg
    for frame in frames:
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise StagingError(
                f"Frame {count} is {frame.dtype} {frame.shape}, expected uint8 "
                f"{(height, width, 3)}."
            )
        try:
            writer.send(np.ascontiguousarray(frame))
        except OSError as exc:  # ffmpeg quit; its own message is on stderr
            raise StagingError(f"ffmpeg could not write {target}: {exc}") from exc
        count += 1
    writer.close()  # waits for ffmpeg to finish the file
    if count == 0:
        raise StagingError("No frames to encode.")
