"""``studio``: a weights-free photographic backdrop, so staging works on a fresh offline machine.

What a product photographer would set up: a seamless paper sweep (wall curving into the floor
behind the product), lit by a soft key light from one side with a glow behind the product,
a soft contact shadow where the product stands, gentle vignetting and a little film grain so
gradients do not band. It goes through the same pipeline as the diffusion backends
(placement, cut-back, scores): only step 4 differs.

Colours come from the prompt and theme:

* colour words (``"sage green"``, ``"pastel pink wall, oak floor"``, ``"dark navy"``) set the
  wall and, when next to ``floor``/``table``/``ground``/``surface``, the floor;
* theme words (``kitchen``, ``beach``, ``christmas``, ``luxury``, ...) pick a palette;
* otherwise the backdrop is a muted tint of the product's own hue, light behind dark
  products and mid-toned behind light ones, so the product always stands out.

The seed varies the light direction, the height of the sweep and the grain.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from staging.generate.base import GenerationRequest, Generator, report

# Named colours (sRGB) for the words people put in prompts and themes.
COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (244, 243, 240),
    "ivory": (242, 238, 226),
    "cream": (240, 230, 210),
    "beige": (225, 210, 185),
    "sand": (222, 202, 168),
    "linen": (236, 228, 214),
    "grey": (170, 170, 170),
    "gray": (170, 170, 170),
    "silver": (196, 198, 202),
    "concrete": (160, 158, 152),
    "charcoal": (62, 64, 68),
    "black": (30, 30, 32),
    "navy": (34, 48, 84),
    "blue": (92, 130, 190),
    "sky": (170, 205, 235),
    "teal": (48, 128, 128),
    "turquoise": (72, 190, 180),
    "mint": (184, 226, 206),
    "green": (96, 150, 96),
    "sage": (168, 186, 156),
    "olive": (128, 128, 74),
    "emerald": (40, 120, 86),
    "yellow": (236, 210, 100),
    "mustard": (206, 166, 52),
    "gold": (206, 170, 90),
    "orange": (232, 140, 70),
    "peach": (246, 200, 168),
    "coral": (240, 128, 110),
    "terracotta": (190, 104, 76),
    "red": (186, 50, 50),
    "burgundy": (110, 30, 44),
    "pink": (236, 170, 186),
    "blush": (238, 206, 200),
    "lavender": (200, 190, 226),
    "lilac": (206, 180, 220),
    "purple": (110, 70, 140),
    "brown": (120, 84, 60),
    "walnut": (110, 76, 52),
    "oak": (190, 150, 104),
    "wood": (168, 124, 84),
    "brick": (166, 100, 80),
    "marble": (232, 230, 226),
}
ALIASES = {"wooden": "wood", "golden": "gold", "greenery": "green", "snowy": "winter"}
LIGHTER = {"light", "pale", "pastel", "soft", "bright"}
DARKER = {"dark", "deep", "rich", "moody"}
WALL_WORDS = {"wall", "walls", "backdrop", "background", "paper", "sweep", "curtain"}
FLOOR_WORDS = {"floor", "floors", "ground", "table", "tabletop", "surface", "desk", "counter"}

# Theme words -> (wall, floor) colour names.
THEME_PALETTES: dict[str, tuple[str, str]] = {
    "living": ("beige", "oak"),
    "kitchen": ("white", "concrete"),
    "bedroom": ("blush", "linen"),
    "bathroom": ("white", "sky"),
    "office": ("silver", "grey"),
    "garden": ("sage", "green"),
    "outdoor": ("sky", "sage"),
    "nature": ("sage", "olive"),
    "beach": ("sky", "sand"),
    "summer": ("peach", "sand"),
    "spring": ("mint", "cream"),
    "autumn": ("terracotta", "brown"),
    "fall": ("terracotta", "brown"),
    "winter": ("silver", "white"),
    "christmas": ("burgundy", "cream"),
    "holiday": ("burgundy", "cream"),
    "night": ("navy", "charcoal"),
    "evening": ("navy", "charcoal"),
    "luxury": ("charcoal", "black"),
    "minimal": ("white", "linen"),
    "scandinavian": ("white", "oak"),
    "studio": ("grey", "grey"),
    "industrial": ("brick", "concrete"),
    "loft": ("brick", "concrete"),
    "coastal": ("sky", "sand"),
    "cosy": ("cream", "oak"),
    "cozy": ("cream", "oak"),
    "rustic": ("linen", "walnut"),
    "tropical": ("mint", "sand"),
}


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a * (1 - t) + b * t


def parse_colours(text: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(wall, floor)`` RGB float colours named in ``text`` (None where nothing was said).

    A colour word takes the ``light``/``dark``-style modifiers just before it. Followed
    within two words by ``wall``/``backdrop``/... it colours the wall, by
    ``floor``/``table``/... the floor. Theme words (``kitchen``, ``beach``) fill in what
    those left open; only then does a colour word attached to nothing in particular
    (``"black steel frames"``) colour the wall: it more often describes a prop than the room.
    """
    words = [ALIASES.get(w, w) for w in re.findall(r"[a-z]+", text.lower())]
    wall = floor = loose = None
    for i, word in enumerate(words):
        if word not in COLOURS:
            continue
        colour = np.array(COLOURS[word], np.float32)
        before = words[max(0, i - 2) : i]
        if LIGHTER & set(before):
            colour = _mix(colour, np.full(3, 250, np.float32), 0.55)
        if DARKER & set(before):
            colour = colour * 0.5
        after = set(words[i + 1 : i + 3])
        if FLOOR_WORDS & after:
            floor = colour if floor is None else floor
        elif WALL_WORDS & after:
            wall = colour if wall is None else wall
        elif loose is None:
            loose = colour
    for word in words:
        if word in THEME_PALETTES:
            wall_name, floor_name = THEME_PALETTES[word]
            if wall is None:
                wall = np.array(COLOURS[wall_name], np.float32)
            if floor is None:
                floor = np.array(COLOURS[floor_name], np.float32)
            break
    if wall is None:
        wall = loose
    return wall, floor


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L in 0..100, a/b around 0) of float RGB colours ``(..., 3)``."""
    px = np.clip(np.asarray(rgb, np.float32) / 255.0, 0, 1).reshape(-1, 1, 3)
    return cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(np.shape(rgb))


def _rgb(lab: np.ndarray) -> np.ndarray:
    px = np.asarray(lab, np.float32).reshape(-1, 1, 3)
    return (np.clip(cv2.cvtColor(px, cv2.COLOR_LAB2RGB), 0, 1) * 255).reshape(np.shape(lab))


def _sample(image: np.ndarray, inside: np.ndarray, limit: int = 20_000) -> np.ndarray:
    """Up to ``limit`` of the product's pixels (float RGB), evenly strided: colour statistics
    do not need all of a megapixel product."""
    pixels = image[inside] if inside.any() else image.reshape(-1, 3)
    step = max(1, len(pixels) // limit)
    return pixels[::step].astype(np.float32)


def product_tint(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A muted backdrop colour in the product's own hue family (RGB float), from the
    product's pixels (``(N, 3)``).

    Light behind dark products, mid-tone behind light ones; a grey product gets a warm
    neutral. The seed turns the hue a little so seeds give visibly different backdrops.
    """
    lab = _lab(pixels)
    lightness = float(np.median(lab[:, 0]))
    a, b = float(np.median(lab[:, 1])), float(np.median(lab[:, 2]))
    chroma = float(np.hypot(a, b))
    hue = np.arctan2(b, a) if chroma > 6 else np.deg2rad(75.0)  # warm neutral for greys
    hue += np.deg2rad(rng.uniform(-25, 25))
    target_l = 90.0 if lightness < 62 else 66.0
    target_c = float(np.clip(0.22 * chroma, 5.0, 11.0))
    return _rgb(np.array([target_l, target_c * np.cos(hue), target_c * np.sin(hue)], np.float32))


def _separate(colour: np.ndarray, product_l: float, min_gap: float = 18.0) -> np.ndarray:
    """Move ``colour``'s lightness away from the product's until they differ by ``min_gap``."""
    lab = _lab(colour)
    gap = float(lab[0]) - product_l
    if abs(gap) >= min_gap:
        return colour
    up, down = product_l + min_gap, product_l - min_gap
    lab[0] = up if up <= 97 and (gap >= 0 or down < 3) else down
    return _rgb(lab)


def main_parts(mask: np.ndarray, share: float = 0.02) -> np.ndarray:
    """``mask`` without its connected components smaller than ``share`` of the largest."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[1:] = areas >= share * areas.max()
    return keep[labels]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class StudioGenerator(Generator):
    """Procedural seamless-sweep backdrop (see the module docstring); no weights, ~20 ms."""

    name = "studio"
    models = ()
    default_steps = 1

    def __init__(self, shadow: float = 0.4, grain: float = 1.6, vignette: float = 0.16):
        self.shadow = shadow
        self.grain = grain
        self.vignette = vignette

    def render(self, request: GenerationRequest) -> np.ndarray:
        image, alpha = request.image, request.alpha.astype(np.float32)
        h, w = alpha.shape
        rng = np.random.default_rng(int(request.seed) & 0xFFFFFFFF)
        text = " ".join(str(v) for v in (request.prompt, request.hints.get("theme")) if v)
        wall, floor = parse_colours(text)
        inside = alpha >= 0.5
        pixels = _sample(image, inside)
        product_l = float(np.median(_lab(pixels)[:, 0]))
        if wall is None:
            wall = _separate(product_tint(pixels, rng), product_l)
        if floor is None:  # the same paper, a little darker where it lies flat
            floor = _rgb(_lab(wall) * np.array([0.93, 1.0, 1.0], np.float32))

        # Geometry from the product's main parts: a few stray matting specks below a ring
        # must not move the floor line or cast shadows of their own.
        body = main_parts(inside)
        ys = np.flatnonzero(body.any(axis=1))
        xs = np.flatnonzero(body.any(axis=0))
        if ys.size:
            top, bottom = float(ys[0]), float(ys[-1] + 1)
            cx, cy = (xs[0] + xs[-1] + 1) / 2.0, (top + bottom) / 2.0
            height = bottom - top
        else:
            top, bottom, cx, cy, height = 0.3 * h, 0.8 * h, w / 2, 0.55 * h, 0.5 * h
        y = np.arange(h, dtype=np.float32)[:, None]
        x = np.arange(w, dtype=np.float32)[None, :]

        # The sweep (one colour per row): the wall turns into the floor a third of the way up
        # the product, or at 70 % of the frame for a product cut by the bottom edge; the wall
        # darkens a little towards the top, the floor lightens towards the camera.
        grounded = bottom < h - 1
        horizon = bottom - rng.uniform(0.25, 0.4) * height if grounded else 0.7 * h
        horizon = float(np.clip(horizon, 0.3 * h, 0.88 * h))
        band = 0.12 * h
        t = _smoothstep((y - (horizon - band)) / (2 * band))
        wall_shade = 0.93 + 0.07 * _smoothstep(y / max(horizon, 1.0))
        floor_shade = 1.0 + 0.05 * _smoothstep((y - horizon) / max(h - horizon, 1.0))
        rows = _mix(wall[None] * wall_shade, floor[None], t) * (1.0 + (floor_shade - 1.0) * t)

        # Light (one gain per pixel): a soft glow behind the product, a fall-off away from the
        # key light's side, the contact shadow, a vignette and a faint plaster texture.
        side = rng.choice([-1.0, 1.0])
        radius = 0.55 * max(h, w)
        glow = np.exp(-((x - cx) ** 2 + (y - (cy - 0.15 * height)) ** 2) / (2 * radius**2))
        gain = (0.94 + 0.1 * glow) * (1.0 + 0.05 * side * (x / max(w - 1, 1) - 0.5) * 2)
        if ys.size and grounded and self.shadow > 0:
            from staging.compose.blend import contact_shadow

            gain *= 1.0 - contact_shadow(alpha * body, strength=self.shadow)
        r2 = ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2
        gain *= 1.0 - self.vignette * np.clip(r2 / 2, 0, 1)
        coarse = rng.standard_normal((max(2, h // 24), max(2, w // 24)), dtype=np.float32)
        texture = cv2.resize(cv2.GaussianBlur(coarse, (0, 0), 1.0), (w, h), cv2.INTER_CUBIC)
        gain *= 1.0 + texture * (0.005 / max(float(texture.std()), 1e-6))

        canvas = rows[:, None, :].astype(np.float32) * gain[..., None].astype(np.float32)
        canvas += self.grain * rng.standard_normal(canvas.shape, dtype=np.float32)
        report(request.progress, 1, 1)
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
