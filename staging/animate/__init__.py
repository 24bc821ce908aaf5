"""Parallax animation (paper §5.4): a product photo becomes a short looping video.

The product (from its mask) is lifted off the photo, the background behind it is inpainted
once, and the two layers move by different amounts, the near product more than the far
background, which reads as depth. Motions: ``pan``, ``zoom``, ``orbit``
(:mod:`staging.animate.base`); layers and frames: :mod:`staging.animate.render`; MP4 / WebM /
GIF files: :mod:`staging.animate.encode`.

>>> from staging.animate import parallax
>>> parallax(rgb, "clip.mp4", mask, motion="orbit", size="4:5", inpaint=inpainter.inpaint)

:meth:`staging.StagingEngine.parallax` does the same from a file, segmenting the product when
no mask is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from staging.animate.base import (
    DEFAULT_STRENGTH,
    MOTIONS,
    Motion,
    Pose,
    create_motion,
    phases,
)
from staging.animate.encode import VIDEO_FORMATS, write_video
from staging.animate.render import (
    FITS,
    PLACEMENTS,
    Inpaint,
    ParallaxLayers,
    ParallaxRenderer,
    build_layers,
    margin_for,
    parse_size,
)
from staging.errors import StagingError

MAX_FRAMES = 3600


@dataclass(frozen=True)
class ParallaxClip:
    """What :func:`parallax` wrote."""

    path: Path
    frames: int
    fps: float
    size: tuple[int, int]  # (width, height)
    motion: str
    fit: str  # "cover" or "pad"
    loop: bool


def prepare(
    image: np.ndarray,
    mask: np.ndarray,
    inpaint: Inpaint,
    motion: str | Motion = "pan",
    strength: float = DEFAULT_STRENGTH,
    size: str | tuple[int, int] | None = None,
    fit: str = "auto",
) -> ParallaxRenderer:
    """Build the layers (the one inpainting) and return the renderer of their frames."""
    if not 0.0 <= strength <= 0.5:
        raise StagingError(
            f"strength must be in [0, 0.5] (share of the short side), got {strength}."
        )
    mot = create_motion(motion)
    out_size = parse_size(size, image.shape)
    layers = build_layers(
        image, mask, out_size, inpaint, margin=margin_for(mot, strength, out_size), fit=fit
    )
    return ParallaxRenderer(layers, mot, strength)


def parallax(
    image: np.ndarray,
    out: str | os.PathLike,
    mask: np.ndarray,
    inpaint: Inpaint,
    seconds: float = 3.0,
    fps: float = 30.0,
    motion: str | Motion = "pan",
    strength: float = DEFAULT_STRENGTH,
    size: str | tuple[int, int] | None = None,
    loop: bool = True,
    fit: str = "auto",
    progress: Callable[[float, str], None] | None = None,
) -> ParallaxClip:
    """Write a parallax clip of ``image`` to ``out`` (``.mp4``, ``.webm`` or ``.gif``).

    Args:
        image: RGB uint8 (H, W, 3).
        mask: the product: bool (H, W) or float alpha in [0, 1].
        inpaint: ``inpaint(rgb, hole) -> rgb`` keeping pixels outside the hole.
        seconds, fps: clip length; ``round(seconds * fps)`` frames.
        motion: ``pan``, ``zoom``, ``orbit`` or a :class:`~staging.animate.base.Motion`.
        strength: product shift amplitude as a share of the output's short side.
        size: ``"WxH"``, a placement (``1:1``, ``4:5``, ``9:16``, ``16:9``) or None (the
            photo's aspect, long side at most 1080).
        loop: one full period (seamless when the player loops) or one sweep.
        fit: ``cover`` (crop around the product), ``pad`` (blurred background) or ``auto``.
        progress: called as ``progress(fraction, message)`` after the background is inpainted
            and as frames are rendered and encoded.
    """
    if fps <= 0 or seconds <= 0:
        raise StagingError("seconds and fps must be positive.")
    count = round(seconds * fps)
    if not 1 <= count <= MAX_FRAMES:
        raise StagingError(f"{count} frames: a clip has 1 to {MAX_FRAMES} frames.")
    suffix = Path(os.fspath(out)).suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise StagingError(
            f"Unsupported video format {suffix or '(none)'!r}: use {', '.join(VIDEO_FORMATS)}."
        )
    report = progress or (lambda fraction, message: None)
    report(0.0, "inpainting the background behind the product")
    renderer = prepare(image, mask, inpaint, motion, strength, size, fit)
    report(0.2, "rendering and encoding frames")

    def counted(frames):
        for number, frame in enumerate(frames, start=1):
            yield frame
            if number % 10 == 0 or number == count:
                report(min(1.0, 0.2 + 0.8 * number / count), f"frame {number} of {count}")

    path = write_video(out, counted(renderer.frames(count, loop)), fps, renderer.layers.size)
    return ParallaxClip(
        path=path,
        frames=count,
        fps=float(fps),
        size=renderer.layers.size,
        motion=renderer.motion.name,
        fit=renderer.layers.fit,
        loop=loop,
    )


__all__ = [
    "DEFAULT_STRENGTH",
    "FITS",
    "MOTIONS",
    "PLACEMENTS",
    "VIDEO_FORMATS",
    "Motion",
    "ParallaxClip",
    "ParallaxLayers",
    "ParallaxRenderer",
    "Pose",
    "build_layers",
    "create_motion",
    "parallax",
    "parse_size",
    "phases",
    "prepare",
    "write_video",
]
