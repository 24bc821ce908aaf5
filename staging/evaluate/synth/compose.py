"""Composition: the object scaled and placed on the frame, over a studio background and its
shadows, then sensor noise and optional JPEG re-compression."""

from __future__ import annotations

import cv2
import numpy as np

from staging.evaluate.synth.backgrounds import BACKGROUNDS, _background
from staging.evaluate.synth.shadows import SHADOWS, _shadow_map

# How often each background style is drawn when none is given (sums to 1).
BACKGROUND_WEIGHTS = (0.24, 0.16, 0.10, 0.14, 0.12, 0.14, 0.10)
SHADOW_WEIGHTS = (0.10, 0.22, 0.18, 0.12, 0.28, 0.10)


def compose_catalog_shot(
    rgb: np.ndarray,
    alpha: np.ndarray,
    rng: np.random.Generator,
    size: int = 512,
    style: str | dict | None = None,
    info: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite an object onto a generated studio background.

    Args:
        rgb: object colours, uint8 HxWx3 (straight, not premultiplied).
        alpha: object alpha, float HxW in [0, 1] (uint8 or bool accepted).
        rng: the random generator (all randomness comes from it).
        size: side of the square output.
        style: None for random; a background name from :data:`BACKGROUNDS`; or a dict with
            any of ``background``, ``shadow`` (from :data:`SHADOWS`), ``scale`` (object's
            longer side / frame, default U(0.45, 0.85)), ``center`` ((x, y) of the object's
            bounding box in pixels), ``noise`` (Gaussian sigma in 0..255 levels, default
            U(0.4, 2.2)) and ``jpeg`` (quality, or 0 for none; default 35% U(80, 95)).
        info: if given, filled with what was drawn: background, colour, shadow, scale, box
            (x0, y0, x1, y1), noise, jpeg quality, ``jpeg_bytes`` (the encoded file when
            re-compressed, so it can be written without a second compression) and
            ``background_rgb`` (the shadowed background, float32 0..255).

    Returns:
        ``(image, alpha_gt)``: the RGB uint8 shot and the object's alpha (float32) as placed.
    """
    opts = {"background": style} if isinstance(style, str) else dict(style or {})
    background = opts.get("background") or _choice(rng, BACKGROUNDS, BACKGROUND_WEIGHTS)
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background style {background!r}; choose from {BACKGROUNDS}")
    shadow = opts.get("shadow") or _choice(rng, SHADOWS, SHADOW_WEIGHTS)
    if shadow not in SHADOWS:
        raise ValueError(f"unknown shadow kind {shadow!r}; choose from {SHADOWS}")

    fg, a = _place(rgb, alpha, rng, size, opts)
    ys, xs = np.nonzero(a > 0.02)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    bg, colour_name = _background(background, rng, size, box)
    shade = _shadow_map(shadow, a, box, rng)  # darkening in [0, 1]
    tint = 1.0 + rng.uniform(-0.06, 0.06, 3).astype(np.float32)  # slightly coloured shadows
    bg_shadowed = bg * np.clip(1.0 - shade[..., None] * tint, 0.0, 1.0)

    a3 = a[..., None]
    img = a3 * fg + (1.0 - a3) * bg_shadowed

    noise = float(opts.get("noise", rng.uniform(0.4, 2.2)))
    if noise > 0:
        luma = rng.standard_normal((size, size, 1), dtype=np.float32)
        chroma = rng.standard_normal((size, size, 3), dtype=np.float32)
        img = img + noise * (0.7 * luma + 0.45 * chroma)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)

    quality = opts.get("jpeg")
    if quality is None:
        quality = int(rng.integers(80, 96)) if rng.random() < 0.35 else 0
    jpeg_bytes = None
    if quality:
        ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
            raise RuntimeError("JPEG encoding failed")
        jpeg_bytes = buf.tobytes()
        image = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])

    if info is not None:
        info.update(
            background=background,
            colour=colour_name,
            shadow=shadow,
            scale=max(box[2] - box[0], box[3] - box[1]) / size,
            box=box,
            noise=noise,
            jpeg=int(quality),
            jpeg_bytes=jpeg_bytes,
            background_rgb=bg_shadowed,
        )
    return image, a


def _choice(rng: np.random.Generator, items, weights) -> str:
    return items[int(rng.choice(len(items), p=np.asarray(weights) / np.sum(weights)))]


def _crop_to_content(rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(alpha > 0)
    if len(ys) == 0:
        raise ValueError("the object's alpha is empty")
    return (
        rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1],
        alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1],
    )


def _place(rgb, alpha, rng, size, opts) -> tuple[np.ndarray, np.ndarray]:
    """Scale and position the object on a size x size canvas (premultiplied resampling)."""
    from staging.evaluate.metrics import as_alpha

    alpha = as_alpha(alpha)
    rgb, alpha = _crop_to_content(np.asarray(rgb, np.float32), alpha)
    h, w = alpha.shape
    scale_frac = float(opts.get("scale", rng.uniform(0.45, 0.85)))
    s = scale_frac * size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    nw, nh = min(nw, size), min(nh, size)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    premul = cv2.resize(rgb * alpha[..., None], (nw, nh), interpolation=interp)
    a_small = np.clip(cv2.resize(alpha, (nw, nh), interpolation=interp), 0.0, 1.0)
    a_small[a_small < 1.0 / 512] = 0.0
    f_small = premul / np.maximum(a_small, 1e-4)[..., None]
    f_small = np.clip(f_small, 0, 255)

    if "center" in opts:
        cx, cy = opts["center"]
        x0, y0 = int(round(cx - nw / 2)), int(round(cy - nh / 2))
    else:
        margin = int(0.04 * size)
        free_x, free_y = size - nw - 2 * margin, size - nh - 2 * margin
        # Catalog framing: mostly centred horizontally, the object resting in the lower half.
        x0 = margin + int(np.clip(free_x * (0.5 + rng.normal(0, 0.18)), 0, max(free_x, 0)))
        y0 = margin + int(np.clip(free_y * rng.uniform(0.35, 0.9), 0, max(free_y, 0)))
    x0 = int(np.clip(x0, 0, size - nw))
    y0 = int(np.clip(y0, 0, size - nh))

    fg = np.zeros((size, size, 3), np.float32)
    a = np.zeros((size, size), np.float32)
    fg[y0 : y0 + nh, x0 : x0 + nw] = f_small
    a[y0 : y0 + nh, x0 : x0 + nw] = a_small
    return fg, a
