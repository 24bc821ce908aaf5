"""Parallax rendering: two layers built once, then a cheap warp + composite per frame.

:func:`build_layers` does all the slow work, once per clip:

1. **Fit** the scene to the output size. ``cover`` scales the photo to fill the frame and
   crops around the product (never cutting it); ``pad`` fits the whole photo and fills the
   rest with a blurred, darkened, cover-scaled copy of the (product-free) scene; ``auto``
   covers when the product fits in the cover crop, else pads. The canvas is the output plus a
   margin as wide as the background ever moves, so no frame shows a border.
2. **Soft alpha**: the mask is resized with area averaging (anti-aliased edges) and feathered
   by a fraction of a pixel; float masks/probabilities are used as alpha directly.
3. **Inpaint once**: the background layer is the scene with the hole filled, where the hole is
   the product's footprint dilated by a few pixels. Every pixel the moving product can ever
   uncover lies in that footprint (layers only move, and the background layer is the whole
   scene minus the product), and filling the whole footprint rather than only the uncovered
   ring keeps the product's own colours out of the fill. The same filled background serves
   every frame, so nothing flickers.
4. **Sprite**: the product's bounding box as premultiplied RGBA ``uint8`` with a transparent
   border, so interpolation fades its edge to nothing.

Per frame (:meth:`ParallaxRenderer.frame`): the background canvas is warped to the output with
the background pose (a small shift/scale; sub-pixel, bicubic), the sprite is warped with the
product pose into only its own bounding box (bicubic, premultiplied, so edges blend without
halos) and composited ``out = P + B * (1 - a)``. All in ``uint8`` with OpenCV (saturating,
rounded), reusing the output buffers, so a frame costs a few warps and one blend (measured:
BENCHMARKS.md, Parallax animation).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from staging.animate.base import DEFAULT_STRENGTH, Motion, Pose, create_motion, phases
from staging.compose.placement import get_placement
from staging.errors import StagingError

PLACEMENTS: dict[str, tuple[int, int]] = {
    ratio: get_placement(ratio).size for ratio in ("1:1", "4:5", "9:16", "16:9")
}
"""Video placements: aspect ratio -> output size (width, height), from the one placement table
(:mod:`staging.compose.placement`)."""

DEFAULT_LONG_SIDE = 1080
"""With no size given the output keeps the photo's aspect, at most this many pixels long."""

FITS = ("auto", "cover", "pad")

Inpaint = Callable[[np.ndarray, np.ndarray], np.ndarray]

_INTERP = cv2.INTER_CUBIC
_HOLE_DILATE_PX = 3
_SPRITE_BORDER = 3


def parse_size(
    size: str | tuple[int, int] | None, image_shape: tuple[int, ...] | None = None
) -> tuple[int, int]:
    """Output ``(width, height)``, both even (yuv420p needs it).

    ``size`` is ``"WxH"`` (``"1080x1350"``), a placement ratio from :data:`PLACEMENTS`
    (``"4:5"``), a ``(width, height)`` tuple, or None: the photo's own aspect with the long
    side at most :data:`DEFAULT_LONG_SIDE`.
    """
    if size is None:
        if image_shape is None:
            raise StagingError("parse_size needs the image shape when no size is given.")
        h, w = image_shape[:2]
        scale = min(1.0, DEFAULT_LONG_SIDE / max(h, w))
        width, height = round(w * scale), round(h * scale)
    elif isinstance(size, str):
        spec = size.strip().lower()
        if spec in PLACEMENTS:
            width, height = PLACEMENTS[spec]
        else:
            match = re.fullmatch(r"(\d+)\s*[x*,]\s*(\d+)", spec)
            if not match:
                raise StagingError(
                    f"Bad output size {size!r}: use WIDTHxHEIGHT (e.g. 1080x1350) or one of "
                    f"{', '.join(PLACEMENTS)}."
                )
            width, height = int(match.group(1)), int(match.group(2))
    else:
        width, height = (int(v) for v in size)
    width, height = width - width % 2, height - height % 2
    if width < 16 or height < 16 or width * height > 4096 * 4096:
        raise StagingError(f"Output size {width}x{height} is out of range (16 px to 4096x4096).")
    return width, height


def soft_alpha(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The product's alpha (float32 HxW in [0, 1]) from a bool mask or a float alpha/prob."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != tuple(shape):
        raise StagingError(f"The mask is {mask.shape}, the image {tuple(shape)}: they must match.")
    if mask.dtype == bool:
        return mask.astype(np.float32)
    if np.issubdtype(mask.dtype, np.integer):
        top = 1.0 if mask.max(initial=0) <= 1 else 255.0
        return (mask.astype(np.float32) / top).clip(0.0, 1.0)
    return np.nan_to_num(mask.astype(np.float32)).clip(0.0, 1.0)


@dataclass
class ParallaxLayers:
    """Everything the frames are made of, at output scale.

    Coordinates: output pixels; the background canvas is the output grown by ``margin`` on
    every side.
    """

    background: np.ndarray  # (H + 2m, W + 2m, 3) uint8, product removed, hole filled
    sprite: np.ndarray  # (h, w, 4) uint8: RGB premultiplied by alpha, then alpha
    sprite_origin: tuple[int, int]  # sprite's top-left corner in output pixels
    center: tuple[float, float]  # the product's centre of mass in output pixels
    size: tuple[int, int]  # output (width, height)
    margin: int
    hole: np.ndarray  # bool, canvas-sized: the pixels that were inpainted
    fit: str  # "cover" or "pad", as resolved

    @property
    def unit(self) -> float:
        """Motion unit: the output's short side in pixels."""
        return float(min(self.size))


def max_shift(motion: Motion, strength: float, n: int = 256) -> tuple[float, float]:
    """Largest background and product shift over a period (in short sides)."""
    bg = fg = 0.0
    for p in np.arange(n) / n:
        prod, back = motion.poses(float(p), strength)
        bg = max(bg, abs(back.dx), abs(back.dy))
        fg = max(fg, abs(prod.dx), abs(prod.dy))
    return bg, fg


def _resize(image: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)


def build_layers(
    image: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int],
    inpaint: Inpaint,
    margin: int = 0,
    fit: str = "auto",
) -> ParallaxLayers:
    """Fit, inpaint (once) and cut out the layers of a parallax clip (see the module doc).

    Args:
        image: RGB uint8 (H, W, 3).
        mask: the product: bool (H, W), or a float alpha/probability map.
        size: output ``(width, height)``.
        inpaint: ``inpaint(rgb, hole) -> rgb`` that keeps pixels outside the hole (an
            :meth:`~staging.inpaint.base.Inpainter.inpaint`).
        margin: pixels of background beyond the frame on every side (how far it moves).
        fit: ``auto``, ``cover`` or ``pad``.
    """
    if fit not in FITS:
        raise StagingError(f"Unknown fit {fit!r}. Use one of: {', '.join(FITS)}.")
    h, w = image.shape[:2]
    alpha = soft_alpha(mask, (h, w))
    ys, xs = np.nonzero(alpha > 0.5)
    if ys.size == 0:
        raise StagingError("The product mask is empty: nothing to animate.")
    width, height = size
    cw, ch = width + 2 * margin, height + 2 * margin  # canvas

    # -- fit: scale s and where the scaled photo's top-left lands on the canvas ---------------
    cover = max(cw / w, ch / h)
    bx0, bx1, by0, by1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    if fit == "auto":
        # Cover when the product (with a little air) fits in the output at cover scale.
        air = 1.06
        fit = (
            "cover"
            if (bx1 - bx0) * cover * air <= width and (by1 - by0) * cover * air <= height
            else "pad"
        )
    s = cover if fit == "cover" else min(width / w, height / h)
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    scene = _resize(image, (sw, sh), s)
    a_scaled = _resize(alpha, (sw, sh), s)
    if s > 1.0:  # upscaled masks have stair steps: feather them by a fraction of a pixel
        a_scaled = cv2.GaussianBlur(a_scaled, (0, 0), 0.35 * s)
    # Feather the edge by about half a pixel: anti-aliased even when the mask was binary.
    a_scaled = cv2.GaussianBlur(a_scaled, (0, 0), 0.6).clip(0.0, 1.0)
    if fit == "cover":
        # Crop centred on the product, clamped to the photo.
        cx, cy = 0.5 * (bx0 + bx1) * s, 0.5 * (by0 + by1) * s
        ox = -int(np.clip(round(cx - cw / 2), 0, sw - cw))
        oy = -int(np.clip(round(cy - ch / 2), 0, sh - ch))
    else:
        ox, oy = (cw - sw) // 2, (ch - sh) // 2

    # -- inpaint once, on the visible part of the scaled photo --------------------------------
    vx0, vy0 = max(0, -ox), max(0, -oy)
    vx1, vy1 = min(sw, cw - ox), min(sh, ch - oy)
    view = np.ascontiguousarray(scene[vy0:vy1, vx0:vx1])
    a_view = a_scaled[vy0:vy1, vx0:vx1]
    hole = a_view > 1.0 / 255.0
    k = 2 * _HOLE_DILATE_PX + 1
    hole = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    hole = hole.astype(bool)
    if hole.all():
        raise StagingError("The product covers the whole frame: there is no background.")
    filled = inpaint(view, hole)

    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas_hole = np.zeros((ch, cw), bool)
    px0, py0 = ox + vx0, oy + vy0
    if fit == "pad":
        canvas[:] = _blurred_fill(filled, (cw, ch))
    canvas[py0 : py0 + filled.shape[0], px0 : px0 + filled.shape[1]] = filled
    canvas_hole[py0 : py0 + filled.shape[0], px0 : px0 + filled.shape[1]] = hole

    # -- product sprite (premultiplied RGBA) --------------------------------------------------
    ays, axs = np.nonzero(a_view > 1.0 / 512.0)
    if ays.size == 0:
        raise StagingError("The product is outside the output frame.")
    b = _SPRITE_BORDER
    sy0, sy1, sx0, sx1 = ays.min(), ays.max() + 1, axs.min(), axs.max() + 1
    a_crop = a_view[sy0:sy1, sx0:sx1]
    rgb = view[sy0:sy1, sx0:sx1].astype(np.float32) * a_crop[..., None]
    sprite = np.zeros((sy1 - sy0 + 2 * b, sx1 - sx0 + 2 * b, 4), np.uint8)
    sprite[b:-b, b:-b, :3] = np.rint(rgb).clip(0, 255).astype(np.uint8)
    sprite[b:-b, b:-b, 3] = np.rint(a_crop * 255.0).astype(np.uint8)
    origin = (px0 + sx0 - b - margin, py0 + sy0 - b - margin)  # output coordinates

    m = cv2.moments(a_crop)
    if m["m00"] > 0:
        center = (
            origin[0] + b + m["m10"] / m["m00"],
            origin[1] + b + m["m01"] / m["m00"],
        )
    else:  # pragma: no cover - guarded by the emptiness checks above
        center = (origin[0] + sprite.shape[1] / 2, origin[1] + sprite.shape[0] / 2)
    return ParallaxLayers(
        background=canvas,
        sprite=sprite,
        sprite_origin=origin,
        center=(float(center[0]), float(center[1])),
        size=(width, height),
        margin=margin,
        hole=canvas_hole,
        fit=fit,
    )


def _blurred_fill(scene: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``scene`` cover-scaled to ``size``, strongly blurred and darkened a little: the padding
    behind a fitted photo (blurred at 1/8 scale: cheap, and no ringing)."""
    cw, ch = size
    h, w = scene.shape[:2]
    s = max(cw / w, ch / h)
    small = (max(1, round(w * s / 8)), max(1, round(h * s / 8)))
    low = cv2.resize(scene, small, interpolation=cv2.INTER_AREA)
    low = cv2.GaussianBlur(low, (0, 0), max(1.0, 0.02 * max(small)))
    big = cv2.resize(low, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - ch) // 2, (big.shape[1] - cw) // 2
    out = big[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32) * 0.8
    return out.astype(np.uint8)


class ParallaxRenderer:
    """Renders frames of a parallax clip from its layers; reuses its buffers between frames.

    >>> renderer = ParallaxRenderer(layers, "pan")
    >>> for frame in renderer.frames(90): ...   # RGB uint8 (H, W, 3), valid until the next
    """

    def __init__(
        self,
        layers: ParallaxLayers,
        motion: str | Motion = "pan",
        strength: float = DEFAULT_STRENGTH,
    ):
        self.layers = layers
        self.motion = create_motion(motion)
        self.strength = float(strength)
        width, height = layers.size
        self._frame = np.empty((height, width, 3), np.uint8)
        self._inv = None

    def matrices(self, phase: float) -> tuple[np.ndarray, np.ndarray]:
        """2x3 affine maps (background canvas -> output, sprite -> output) at ``phase``."""
        lay = self.layers
        prod, back = self.motion.poses(phase, self.strength)
        m_bg = back.matrix(lay.center, lay.unit)
        m_bg[:, 2] -= m_bg[:, :2] @ np.array([lay.margin, lay.margin], np.float64)
        m_fg = prod.matrix(lay.center, lay.unit)
        m_fg[:, 2] += m_fg[:, :2] @ np.array(lay.sprite_origin, np.float64)
        return m_bg, m_fg

    def poses(self, phase: float) -> tuple[Pose, Pose]:
        return self.motion.poses(phase, self.strength)

    def frame(self, phase: float, out: np.ndarray | None = None) -> np.ndarray:
        """The frame at ``phase``, written into ``out`` (default: an internal buffer that the
        next call overwrites)."""
        lay = self.layers
        width, height = lay.size
        frame = self._frame if out is None else out
        m_bg, m_fg = self.matrices(phase)
        cv2.warpAffine(
            lay.background,
            m_bg,
            (width, height),
            dst=frame,
            flags=_INTERP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        # The sprite's footprint in the output, clipped to the frame.
        sh, sw = lay.sprite.shape[:2]
        corners = m_fg @ np.array([[0, sw, 0, sw], [0, 0, sh, sh], [1, 1, 1, 1]], np.float64)
        x0 = max(0, math.floor(corners[0].min()) - 1)
        y0 = max(0, math.floor(corners[1].min()) - 1)
        x1 = min(width, math.ceil(corners[0].max()) + 1)
        y1 = min(height, math.ceil(corners[1].max()) + 1)
        if x1 <= x0 or y1 <= y0:
            return frame
        m_roi = m_fg.copy()
        m_roi[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(
            lay.sprite,
            m_roi,
            (x1 - x0, y1 - y0),
            flags=_INTERP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0, 0),
        )
        alpha = warped[..., 3]
        inv = 255 - alpha
        roi = frame[y0:y1, x0:x1]
        back = cv2.multiply(roi, cv2.merge((inv, inv, inv)), scale=1.0 / 255.0)
        # Cubic overshoot can leave premultiplied colour above alpha: clamp it.
        fore = cv2.min(warped[..., :3], cv2.merge((alpha, alpha, alpha)))
        roi[...] = cv2.add(back, fore)
        return frame

    def frames(self, count: int, loop: bool = True) -> Iterator[np.ndarray]:
        """``count`` frames; one full period when looping, else one sweep (see
        :func:`~staging.animate.base.phases`). Each frame is valid until the next one."""
        for p in phases(count, loop):
            yield self.frame(float(p))


def margin_for(motion: Motion, strength: float, size: tuple[int, int]) -> int:
    """Canvas margin so the moving background never shows the canvas edge (plus the bicubic
    kernel's reach)."""
    bg, _ = max_shift(motion, strength)
    return int(math.ceil(bg * min(size))) + 3
