"""Procedural objects: simple anti-aliased products drawn on a supersampled canvas, so tests
and evals need no data."""

from __future__ import annotations

import cv2
import numpy as np

from staging.evaluate.synth.backgrounds import _jitter

KINDS = ("chair", "lamp", "plant", "box", "grey", "white", "glass", "ring")


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
