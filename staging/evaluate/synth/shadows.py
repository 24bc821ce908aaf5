"""Shadows: contact, cast and drop shadows as darkening maps in ``[0, 1]`` for the background
behind the object (shadows darken it multiplicatively; they are not product)."""

from __future__ import annotations

import cv2
import numpy as np

SHADOWS = ("none", "contact", "cast", "drop", "contact+cast", "contact+drop")


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
