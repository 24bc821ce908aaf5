"""Studio backgrounds: white, off-white, grey, gradients, a spotlight, pastel colours and a
floor/wall sweep, each with a little random variation."""

from __future__ import annotations

import numpy as np

BACKGROUNDS = ("white", "offwhite", "grey", "gradient", "radial", "pastel", "sweep")
PASTELS = {
    "pink": (246, 214, 220),
    "mint": (206, 238, 222),
    "sky": (204, 226, 246),
    "beige": (238, 226, 204),
    "lavender": (224, 214, 242),
    "peach": (248, 222, 204),
}


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
