"""Synthetic catalog shots: an object (RGB + alpha) composited onto a studio background.

:func:`compose_catalog_shot` places an object on a generated studio background (white,
off-white, grey, gradients, spotlight, pastel colours, floor/wall sweeps) with soft contact,
cast or drop shadows that darken the background multiplicatively behind the object, then adds
mild sensor noise and optional JPEG re-compression. The ground truth is the object's alpha only
(shadows are not product).

:func:`procedural_object` draws simple anti-aliased objects (chair, lamp, plant, box, grey,
white, glass, ring) so tests need no data.

Everything is deterministic given a ``numpy.random.Generator``.
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUNDS = ("white", "offwhite", "grey", "gradient", "radial", "pastel", "sweep")
# How often each background style is drawn when none is given (sums to 1).
BACKGROUND_WEIGHTS = (0.24, 0.16, 0.10, 0.14, 0.12, 0.14, 0.10)
SHADOWS = ("none", "contact", "cast", "drop", "contact+cast", "contact+drop")
SHADOW_WEIGHTS = (0.10, 0.22, 0.18, 0.12, 0.28, 0.10)
PASTELS = {
    "pink": (246, 214, 220),
    "mint": (206, 238, 222),
    "sky": (204, 226, 246),
    "beige": (238, 226, 204),
    "lavender": (224, 214, 242),
    "peach": (248, 222, 204),
}
KINDS = ("chair", "lamp", "plant", "box", "grey", "white", "glass", "ring")


# --------------------------------------------------------------------------- composition


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


# --------------------------------------------------------------------------- backgrounds


def _jitter(rng, colour, amount=4.0) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def _background(style: str, rng: np.random.Generator, size: int, box) -> tuple[np.ndarray, str]:
    """A float32 size x size x 3 studio background (0..255) and a colour name."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    name = style
    if style == "white":
        level = 255.0 if rng.random() < 0.5 else rng.uniform(246, 255)
        bg = np.full((size, size, 3), level, np.float32)
        name = f"white{int(level)}"
    elif style == "offwhite":
        warm = rng.uniform(0, 1)
        base = np.array([247, 244, 238], np.float32) + warm * np.array([3, 0, -8], np.float32)
        bg = np.broadcast_to(_jitter(rng, base, 4), (size, size, 3)).copy()
    elif style == "grey":
        level = rng.uniform(196, 236)
        bg = np.broadcast_to(_jitter(rng, (level, level, level), 2), (size, size, 3)).copy()
    elif style == "gradient":
        light = _jitter(rng, (250, 249, 247), 5)
        dark = light * rng.uniform(0.72, 0.92)
        if rng.random() < 0.35:  # a tinted gradient
            name, tint = _pastel(rng)
            dark = 0.5 * dark + 0.5 * tint * rng.uniform(0.85, 1.0)
        t = yy if rng.random() < 0.6 else 1.0 - yy  # usually lighter at the top
        gamma = rng.uniform(0.6, 1.6)
        bg = light + (dark - light) * (t**gamma)[..., None]
    elif style == "radial":
        centre = light = _jitter(rng, (252, 251, 249), 3)
        if rng.random() < 0.3:
            name, tint = _pastel(rng)
            centre = light = 0.4 * light + 0.6 * tint
        edge = centre * rng.uniform(0.6, 0.88)
        cx = (box[0] + box[2]) / 2 / size + rng.normal(0, 0.08)
        cy = (box[1] + box[3]) / 2 / size + rng.normal(-0.05, 0.1)
        r = np.sqrt((xx - cx) ** 2 + ((yy - cy) * rng.uniform(0.8, 1.3)) ** 2)
        t = np.clip(r / rng.uniform(0.6, 1.0), 0, 1) ** rng.uniform(1.3, 2.5)
        bg = light + (edge - light) * t[..., None]
    elif style == "pastel":
        name, colour = _pastel(rng)
        bg = np.broadcast_to(colour, (size, size, 3)).copy()
        if rng.random() < 0.5:  # soft light falloff
            bg = bg * (1.0 - rng.uniform(0.03, 0.1) * yy)[..., None]
    elif style == "sweep":
        # Seamless paper: a wall that curves into the floor behind the object's base.
        if rng.random() < 0.5:
            name, wall = _pastel(rng)
        else:
            name, wall = "white", _jitter(rng, (246, 245, 242), 6)
        floor = wall * rng.uniform(0.86, 1.04)
        floor = np.clip(floor, 0, 255)
        obj_h = box[3] - box[1]
        horizon = (box[3] - rng.uniform(0.08, 0.45) * obj_h) / size
        width = rng.uniform(0.04, 0.18)
        t = 1.0 / (1.0 + np.exp(-(yy - horizon) / (width / 4)))
        wall_shade = 1.0 - rng.uniform(0.0, 0.12) * (1 - yy)  # wall a little darker up top
        floor_shade = 1.0 + rng.uniform(0.0, 0.06) * (yy - horizon)  # floor lighter towards us
        bg = wall * ((1 - t) * wall_shade)[..., None] + floor * (t * floor_shade)[..., None]
    else:  # pragma: no cover - validated by the caller
        raise ValueError(style)

    if style not in ("white",) and rng.random() < 0.4:  # mild vignette on any coloured style
        r2 = (xx - 0.5) ** 2 + (yy - 0.5) ** 2
        bg = bg * (1.0 - rng.uniform(0.02, 0.1) * r2 / 0.5)[..., None]
    return np.clip(bg, 0, 255).astype(np.float32), name


def _pastel(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    names = list(PASTELS)
    name = names[int(rng.integers(len(names)))]
    return name, _jitter(rng, PASTELS[name], 6)


# --------------------------------------------------------------------------- shadows


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.3:
        return x
    return cv2.GaussianBlur(x, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_CONSTANT)


def _shadow_map(kind: str, a: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    """Darkening factor in [0, 1] (0 = no shadow) for the background behind the object."""
    size = a.shape[0]
    total = np.zeros_like(a)
    parts = [] if kind == "none" else kind.split("+")
    for part in parts:
        if part == "contact":
            s = _contact_shadow(a, box, rng)
        elif part == "cast":
            s = _cast_shadow(a, box, rng)
        else:
            s = _drop_shadow(a, box, rng)
        total = 1.0 - (1.0 - total) * (1.0 - s)  # shadows combine like stacked filters
    if size and parts:
        total = np.clip(total, 0.0, 0.85)
    return total


def _contact_shadow(a, box, rng) -> np.ndarray:
    """A dark, tight, blurred shape where the object touches the floor."""
    size = a.shape[0]
    x0, y0, x1, y1 = box
    h = y1 - y0
    foot_rows = a[max(y0, y1 - max(2, int(0.06 * h))) : y1]
    footprint = foot_rows.max(axis=0)
    cols = np.nonzero(footprint > 0.3)[0]
    lo, hi = (cols.min(), cols.max()) if len(cols) else (x0, x1)
    s = np.zeros_like(a)
    width = hi - lo + 1
    if rng.random() < 0.5 or width < 6:
        # An ellipse under the base.
        cx = (lo + hi) / 2
        ax = width / 2 * rng.uniform(0.95, 1.15) + 2
        ay = max(2.0, width * rng.uniform(0.03, 0.09))
        cy = y1 - ay * rng.uniform(0.2, 0.6)
        cv2.ellipse(
            s,
            (round(cx * 4), round(cy * 4)),
            (round(ax * 4), round(ay * 4)),
            0,
            0,
            360,
            1.0,
            -1,
            cv2.LINE_AA,
            shift=2,
        )
        s = _blur(s, rng.uniform(2.0, 7.0) * size / 512)
    else:
        # A thin band that follows the footprint: separate spots under chair legs.
        band = max(2, int(rng.uniform(0.01, 0.025) * size))
        foot = cv2.dilate(footprint.reshape(1, -1), np.ones((1, 5), np.uint8)).ravel()
        top = max(0, y1 - band // 2)
        s[top : min(size, y1 + band // 2 + 1)] = foot
        s = _blur(s, rng.uniform(1.5, 5.0) * size / 512)
    peak = max(float(s.max()), 1e-6)
    return np.clip(s / peak, 0, 1) * rng.uniform(0.35, 0.75)


def _cast_shadow(a, box, rng) -> np.ndarray:
    """The silhouette projected onto the floor: squashed, sheared, offset and blurred."""
    size = a.shape[0]
    x0, y0, x1, y1 = box
    base = y1 - 1
    # Behind the object (k > 0, light from the front) or in front of it (k < 0, backlit).
    k = rng.uniform(0.12, 0.45) if rng.random() < 0.7 else -rng.uniform(0.08, 0.3)
    shear = rng.uniform(-1.3, 1.3)
    dx, dy = rng.normal(0, 0.01 * size), rng.uniform(-0.004, 0.01) * size
    # A point h = base - y above the floor lands at y' = base - k*h, shifted sideways by
    # shear*k*h:  x' = x - shear*k*y + shear*k*base + dx ;  y' = k*y + base*(1 - k) + dy.
    m = np.array(
        [[1.0, -shear * k, shear * k * base + dx], [0.0, k, base * (1 - k) + dy]], np.float32
    )
    proj = cv2.warpAffine(
        a, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    sigma_near = rng.uniform(2.5, 6.0) * size / 512
    sigma_far = rng.uniform(8.0, 25.0) * size / 512
    near, far = _blur(proj, sigma_near), _blur(proj, sigma_far)
    # Softer further from the contact line (penumbra grows with distance).
    yy = np.arange(size, dtype=np.float32)[:, None]
    reach = max(4.0, abs(k) * (y1 - y0))
    t = np.clip(np.abs(yy - base) / reach, 0, 1)
    s = near * (1 - t) + far * t
    fade = 1.0 - rng.uniform(0.2, 0.6) * t  # lighter at the far end
    return np.clip(s * fade, 0, 1) * rng.uniform(0.2, 0.6)


def _drop_shadow(a, box, rng) -> np.ndarray:
    """An offset, blurred copy of the silhouette (object in front of a wall/surface)."""
    size = a.shape[0]
    dx = rng.choice([-1, 1]) * rng.uniform(0.01, 0.06) * size
    dy = rng.uniform(0.005, 0.05) * size
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    shifted = cv2.warpAffine(
        a, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    s = _blur(shifted, rng.uniform(4.0, 25.0) * size / 512)
    return np.clip(s, 0, 1) * rng.uniform(0.2, 0.5)


# --------------------------------------------------------------------------- procedural objects


class _Painter:
    """Supersampled painter's-algorithm canvas; ``result`` downsamples with area averaging."""

    def __init__(self, size: int, ss: int = 4):
        self.size, self.ss = size, ss
        n = size * ss
        self.rgb = np.zeros((n, n, 3), np.float32)
        self.alpha = np.zeros((n, n), np.float32)
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
        self.yy, self.xx = yy, xx

    def pts(self, points) -> np.ndarray:
        return (np.asarray(points, np.float32) * self.size * self.ss).astype(np.int32)

    def mask(self) -> np.ndarray:
        return np.zeros(self.alpha.shape, np.uint8)

    def poly(self, points) -> np.ndarray:
        m = self.mask()
        cv2.fillPoly(m, [self.pts(points)], 1)
        return m.astype(bool)

    def ellipse(self, centre, axes, angle=0.0) -> np.ndarray:
        m = self.mask()
        n = self.size * self.ss
        cv2.ellipse(
            m,
            (int(centre[0] * n), int(centre[1] * n)),
            (max(1, int(axes[0] * n)), max(1, int(axes[1] * n))),
            angle,
            0,
            360,
            1,
            -1,
        )
        return m.astype(bool)

    def line(self, p0, p1, width) -> np.ndarray:
        m = self.mask()
        n = self.size * self.ss
        cv2.line(
            m,
            (int(p0[0] * n), int(p0[1] * n)),
            (int(p1[0] * n), int(p1[1] * n)),
            1,
            max(1, int(width * n)),
        )
        return m.astype(bool)

    def paint(self, m: np.ndarray, colour, opacity: float = 1.0, shade=None) -> None:
        """Paint region m with colour (RGB or HxWx3 field) times an optional shading field."""
        col = np.asarray(colour, np.float32)
        if col.ndim == 1:
            col = np.broadcast_to(col, self.rgb.shape)
        if shade is not None:
            col = col * shade[..., None]
        self.rgb[m] = np.clip(col[m], 0, 255)
        self.alpha[m] = opacity

    def shade(self, m, rng, strength=0.3, direction=None) -> np.ndarray:
        """A linear light gradient across the region's bounding box (1 +- strength/2)."""
        ys, xs = np.nonzero(m)
        if len(ys) == 0:
            return np.ones_like(self.alpha)
        ang = rng.uniform(0, 2 * np.pi) if direction is None else direction
        u = (self.xx - xs.mean() / m.shape[1]) * np.cos(ang) + (
            self.yy - ys.mean() / m.shape[0]
        ) * np.sin(ang)
        span = max(np.ptp(xs), np.ptp(ys), 1) / m.shape[1]
        return 1.0 + strength * np.clip(u / span, -0.5, 0.5)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        size = self.size
        a = cv2.resize(self.alpha, (size, size), interpolation=cv2.INTER_AREA)
        premul = cv2.resize(
            self.rgb * self.alpha[..., None], (size, size), interpolation=cv2.INTER_AREA
        )
        rgb = premul / np.maximum(a, 1e-4)[..., None]
        rgb[a <= 0] = 0
        return (
            np.clip(np.round(rgb), 0, 255).astype(np.uint8),
            np.clip(a, 0, 1).astype(np.float32),
        )


def _texture(rng, shape, scale, amount) -> np.ndarray:
    """Low-frequency multiplicative texture around 1."""
    h, w = shape
    small = rng.standard_normal((max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return 1.0 + amount * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _random_colour(rng) -> np.ndarray:
    palette = [
        (150, 100, 60),
        (190, 150, 100),
        (60, 60, 70),
        (170, 40, 40),
        (40, 80, 140),
        (70, 120, 70),
        (200, 170, 60),
        (120, 120, 125),
        (90, 60, 40),
        (220, 120, 60),
    ]
    return _jitter(rng, palette[int(rng.integers(len(palette)))], 15)


def procedural_object(
    kind: str, rng: np.random.Generator, size: int = 384
) -> tuple[np.ndarray, np.ndarray]:
    """A simple synthetic product: ``(rgb uint8 HxWx3, alpha float32 HxW)``, anti-aliased.

    Kinds: ``chair`` (seat, back, thin legs, background between legs), ``lamp`` (thin stem),
    ``plant`` (leaves in a pot), ``box`` (solid, textured), ``grey`` (neutral grey/black/
    silver: confusable with shadows), ``white`` (white with soft shading), ``glass``
    (semi-transparent, alpha ~0.3-0.6 inside) and ``ring`` (a hole in the middle).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")
    p = _Painter(size)
    j = lambda: rng.uniform(-0.02, 0.02)  # noqa: E731 - tiny geometric jitter
    if kind == "chair":
        col = _random_colour(rng)
        leg_w = rng.uniform(0.012, 0.025)
        sx0, sx1, sy = 0.22 + j(), 0.78 + j(), 0.55 + j()
        depth = rng.uniform(0.05, 0.09)
        legs = [
            ((sx0 + 0.02, sy + 0.02), (sx0 + 0.01 + j(), 0.94)),
            ((sx1 - 0.02, sy + 0.02), (sx1 - 0.01 + j(), 0.94)),
            ((sx0 + 0.1, sy - depth + 0.02), (sx0 + 0.11, 0.88)),
            ((sx1 - 0.1, sy - depth + 0.02), (sx1 - 0.11, 0.88)),
        ]
        for k, (a0, a1) in enumerate(legs[::-1]):
            m = p.line(a0, a1, leg_w)
            p.paint(m, col * (0.75 if k < 2 else 0.9))
        if rng.random() < 0.6:  # a stretcher between the front legs
            m = p.line((sx0 + 0.015, 0.8), (sx1 - 0.015, 0.8), leg_w * 0.8)
            p.paint(m, col * 0.85)
        back_top = rng.uniform(0.05, 0.15)
        back = p.poly(
            [
                (sx0 + 0.08, sy - depth),
                (sx0 + 0.06, back_top),
                (sx1 - 0.06, back_top),
                (sx1 - 0.08, sy - depth),
            ]
        )
        if rng.random() < 0.5:  # slatted back: more holes
            n = int(rng.integers(3, 6))
            for i in range(n):
                t0 = 0.1 + 0.8 * (i + 0.5) / n
                x = sx0 + 0.08 + t0 * (sx1 - sx0 - 0.16)
                gap = p.line((x, back_top + 0.06), (x, sy - depth - 0.05), 0.025)
                back &= ~gap
        p.paint(back, col, shade=p.shade(back, rng, 0.25))
        seat = p.poly(
            [
                (sx0, sy),
                (sx0 + 0.08, sy - depth),
                (sx1 - 0.08, sy - depth),
                (sx1, sy),
                (sx1, sy + 0.035),
                (sx0, sy + 0.035),
            ]
        )
        p.paint(
            seat, col * 1.05, shade=p.shade(seat, rng, 0.2) * _texture(rng, seat.shape, 40, 0.04)
        )
    elif kind == "lamp":
        col = _random_colour(rng)
        shade_col = _jitter(rng, (235, 225, 200), 15) if rng.random() < 0.6 else col
        cx = 0.5 + j()
        base = p.ellipse((cx, 0.93), (rng.uniform(0.1, 0.16), 0.025))
        stem_w = rng.uniform(0.006, 0.014)
        top = rng.uniform(0.3, 0.4)
        if rng.random() < 0.5:  # an arm lamp
            elbow = (cx + rng.uniform(-0.2, 0.2), rng.uniform(0.45, 0.6))
            stem = p.line((cx, 0.93), elbow, stem_w) | p.line(elbow, (cx, top), stem_w)
        else:
            stem = p.line((cx, 0.93), (cx, top), stem_w)
        p.paint(stem, col * 0.8)
        p.paint(base, col, shade=p.shade(base, rng, 0.3))
        w_top, w_bot = rng.uniform(0.08, 0.14), rng.uniform(0.16, 0.26)
        sh = p.poly(
            [
                (cx - w_top, 0.08),
                (cx + w_top, 0.08),
                (cx + w_bot, top + 0.02),
                (cx - w_bot, top + 0.02),
            ]
        )
        p.paint(sh, shade_col, shade=p.shade(sh, rng, 0.3, direction=0.0))
    elif kind == "plant":
        pot_col = (
            _jitter(rng, (200, 110, 70), 20)
            if rng.random() < 0.5
            else _jitter(rng, (235, 235, 230), 10)
        )
        pot = p.poly([(0.35, 0.68), (0.65, 0.68), (0.6, 0.96), (0.4, 0.96)])
        for _ in range(int(rng.integers(9, 16))):
            ang = rng.uniform(-160, -20)
            length = rng.uniform(0.15, 0.32)
            rad = np.deg2rad(ang)
            cx = 0.5 + np.cos(rad) * length * 0.9
            cy = 0.68 + np.sin(rad) * length * 0.9
            leaf = p.ellipse((cx, cy), (length * 0.55, rng.uniform(0.025, 0.05)), ang)
            stem = p.line((0.5, 0.7), (cx, cy), 0.008)
            green = _jitter(rng, (60, 130, 60), 25)
            p.paint(stem, green * 0.7)
            p.paint(leaf, green, shade=p.shade(leaf, rng, 0.35))
        p.paint(pot, pot_col, shade=p.shade(pot, rng, 0.3, direction=0.0))
    elif kind == "box":
        col = _random_colour(rng)
        d = rng.uniform(0.08, 0.16)
        x0, x1, y0, y1 = 0.15 + j(), 0.72 + j(), 0.3 + j(), 0.92
        front = p.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        side = p.poly([(x1, y0), (x1 + d, y0 - d), (x1 + d, y1 - d), (x1, y1)])
        top = p.poly([(x0, y0), (x0 + d, y0 - d), (x1 + d, y0 - d), (x1, y0)])
        tex = _texture(rng, front.shape, 24, 0.08)
        stripes = 1.0 + 0.06 * np.sin(p.xx * rng.uniform(40, 120))
        p.paint(front, col, shade=tex * stripes)
        p.paint(side, col * 0.72, shade=tex)
        p.paint(top, col * 1.15, shade=tex)
    elif kind in ("grey", "white"):
        if kind == "grey":
            level = rng.choice([rng.uniform(20, 60), rng.uniform(90, 150), rng.uniform(160, 200)])
            col = np.array([level] * 3, np.float32) + rng.uniform(-3, 3, 3)
            strength = 0.5
        else:
            col = _jitter(rng, (248, 248, 246), 4)
            strength = 0.22
        body = p.poly([(0.3, 0.3), (0.7, 0.3), (0.72, 0.9), (0.28, 0.9)])
        body |= p.ellipse((0.5, 0.9), (0.22, 0.04))
        body |= p.ellipse((0.5, 0.3), (0.2, 0.04))
        if rng.random() < 0.5:  # a handle/spout with a hole
            ring = p.ellipse((0.76, 0.55), (0.1, 0.14)) & ~p.ellipse((0.76, 0.55), (0.05, 0.09))
            body |= ring
        shade = p.shade(body, rng, strength, direction=rng.uniform(-0.5, 0.5))
        highlight = 1.0 + 0.15 * np.exp(-(((p.xx - 0.42) / 0.03) ** 2))
        p.paint(body, col, shade=shade * highlight)
    elif kind == "glass":
        tint = _jitter(rng, (200, 225, 225), 20)
        body = p.poly([(0.32, 0.2), (0.68, 0.2), (0.64, 0.92), (0.36, 0.92)])
        inner = p.poly([(0.345, 0.22), (0.655, 0.22), (0.62, 0.9), (0.38, 0.9)])
        opacity = rng.uniform(0.3, 0.6)
        p.paint(body, tint * 0.8, opacity=min(1.0, opacity + 0.35))  # denser rim
        p.paint(
            inner, tint, opacity=opacity, shade=1.0 + 0.2 * np.exp(-(((p.xx - 0.42) / 0.02) ** 2))
        )
    elif kind == "ring":
        col = _random_colour(rng)
        outer = rng.uniform(0.36, 0.46)
        hole = outer * rng.uniform(0.45, 0.7)
        squash = rng.uniform(0.8, 1.0)
        m = p.ellipse((0.5, 0.5), (outer, outer * squash)) & ~p.ellipse(
            (0.5, 0.5), (hole, hole * squash)
        )
        p.paint(m, col, shade=p.shade(m, rng, 0.4) * _texture(rng, m.shape, 30, 0.05))
    return p.result()
