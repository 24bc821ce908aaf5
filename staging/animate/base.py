"""Motion paths of the parallax animation: where each layer is at each moment of the clip.

A :class:`Motion` maps a *phase* ``p`` to two :class:`Pose` objects, one for the product
(the near layer) and one for the background (the far layer). Every path is built from
``sin``/``cos`` of ``2*pi*p``, so it is periodic with period 1: a looping clip samples one
full period (``p = i / n``, so frame ``n`` would be frame ``0`` again and the loop has no seam),
and a one-shot clip samples half a period, from one extreme to the other, with cosine easing
at both ends (:func:`phases`).

Shifts are in units of the output's short side, multiplied by ``strength``; the background
follows the product with a factor :attr:`Motion.depth` (< 1, or negative when it moves the
other way, as when orbiting), which is what makes the parallax.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from staging.errors import UnknownNameError

DEFAULT_STRENGTH = 0.04
"""Default product shift amplitude: 4% of the output's short side (29 px at 720 px)."""


@dataclass(frozen=True)
class Pose:
    """A layer's placement: shift (``dx``, ``dy``, in short sides) and ``scale`` about the
    product's centre."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0

    def matrix(self, center: tuple[float, float], unit: float) -> np.ndarray:
        """The 2x3 affine map (output pixels to output pixels) of this pose: scale about
        ``center``, then shift by ``(dx, dy) * unit`` pixels."""
        cx, cy = center
        s = self.scale
        return np.array(
            [[s, 0.0, cx * (1.0 - s) + self.dx * unit], [0.0, s, cy * (1.0 - s) + self.dy * unit]],
            dtype=np.float64,
        )


class Motion(ABC):
    """A motion path: one small class per motion, registered in :data:`MOTIONS`."""

    name: str = "?"
    depth: float = 0.25
    """How far the background moves, relative to the product."""

    @abstractmethod
    def poses(self, phase: float, strength: float) -> tuple[Pose, Pose]:
        """``(product, background)`` poses at ``phase`` (period 1)."""


class Pan(Motion):
    """Side-to-side: the product swings horizontally, the background follows at a quarter."""

    name = "pan"

    def poses(self, phase: float, strength: float) -> tuple[Pose, Pose]:
        x = -math.cos(2.0 * math.pi * phase) * strength
        return Pose(dx=x), Pose(dx=x * self.depth)


class Zoom(Motion):
    """Push in and out: the product grows by up to 1.5 x ``strength`` (6% by default), the
    background by a quarter of that, both about the product's centre."""

    name = "zoom"

    def poses(self, phase: float, strength: float) -> tuple[Pose, Pose]:
        z = 0.5 * (1.0 - math.cos(2.0 * math.pi * phase)) * 1.5 * strength
        return Pose(scale=1.0 + z), Pose(scale=1.0 + z * self.depth)


class Orbit(Motion):
    """The camera circles the product: the product travels an ellipse (half as tall as wide)
    and the background the opposite way, as when a camera turns around a pivot."""

    name = "orbit"
    depth = -0.35

    def poses(self, phase: float, strength: float) -> tuple[Pose, Pose]:
        a = 2.0 * math.pi * phase
        x, y = -math.cos(a) * strength, 0.5 * math.sin(a) * strength
        # A slight push in at the front of the orbit adds to the sense of depth.
        s = 1.0 + 0.25 * strength * math.sin(a)
        return Pose(dx=x, dy=y, scale=s), Pose(dx=x * self.depth, dy=y * self.depth)


MOTIONS: dict[str, type[Motion]] = {"pan": Pan, "zoom": Zoom, "orbit": Orbit}


def create_motion(motion: str | Motion) -> Motion:
    """The motion called ``motion`` (a name from :data:`MOTIONS`), or ``motion`` itself."""
    if isinstance(motion, Motion):
        return motion
    cls = MOTIONS.get(str(motion).lower())
    if cls is None:
        raise UnknownNameError(f"Unknown motion {motion!r}. Use one of: {', '.join(MOTIONS)}.")
    return cls()


def phases(frames: int, loop: bool = True) -> np.ndarray:
    """The phase of each frame: one full period when looping (the frame after the last is the
    first again), else half a period from one extreme to the other, both ends included."""
    if frames < 1:
        raise ValueError("a clip needs at least one frame")
    if loop:
        return np.arange(frames, dtype=np.float64) / frames
    if frames == 1:
        return np.zeros(1)
    return 0.5 * np.arange(frames, dtype=np.float64) / (frames - 1)
