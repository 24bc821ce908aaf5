"""Pasting a product into a scene: soft edges, a contact shadow, bounded harmonisation.

Each step is a small pure function on arrays (scene RGB uint8 or float, alpha float32 HxW):

* :func:`feather` softens hard mask edges by about a pixel so a pasted product does not look
  cut out with scissors; soft alpha from a matting backend stays soft, solid stays solid;
* :func:`contact_shadow` darkens the floor right under the product. Without it a product
  pasted on a floor reads as floating, however well it is aligned;
* :func:`harmonize` nudges the product's colour a little towards the scene's light. It is
  *bounded* on purpose: advertisers need the product to stay the product (its SSIM against
  the input is reported), so we only shift the mean, by a small fraction, with hard caps;
* :func:`composite` is the over operator; :func:`product_ssim` measures faithfulness.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.metrics import structural_similarity

SOLID = 0.999

BLUR_DETAIL = 8.0
"""A Gaussian blur wider than this many pixels (sigma) is computed at a reduced resolution by
:func:`wide_blur`: it keeps no detail finer than its sigma, so nothing visible is lost."""


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(image, (0, 0), sigma)`` in time that does not grow with ``sigma``.

    A shadow's penumbra is a blur of tens of pixels: at 1024 px its kernel is ~500 taps per
    pixel. The image is instead area-averaged by ``f = sigma // BLUR_DETAIL``, blurred there
    by the sigma that, with the averaging and the bilinear enlargement, adds up to ``sigma``
    (variances add: ``f^2/12`` for the box, ``f^2/6`` for the tent), and enlarged back. The
    frame is first mirrored outwards by the kernel's reach, as OpenCV does at full size, so the
    edges are right too. Within 0.3 % of the exact blur (tested).
    """
    factor = int(sigma // BLUR_DETAIL)
    if factor < 2:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    h, w = image.shape[:2]
    pad = factor * int(np.ceil(4 * sigma / factor))
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    size = (big.shape[1] // factor, big.shape[0] // factor)
    small = cv2.resize(big, size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), np.sqrt(sigma**2 - factor**2 / 4) / factor)
    big = cv2.resize(small, (big.shape[1], big.shape[0]), interpolation=cv2.INTER_LINEAR)
    return big[pad : pad + h, pad : pad + w]


def feather(alpha: np.ndarray, sigma: float = 0.7) -> np.ndarray:
    """``alpha`` with edges softened by a Gaussian of ``sigma`` pixels (float32 HxW)."""
    alpha = alpha.astype(np.float32)
    if sigma <= 0:
        return alpha
    soft = cv2.GaussianBlur(alpha, (0, 0), sigma)
    # Keep what was solid and stays solid exactly 1, so the interior is never touched.
    return np.where((alpha >= SOLID) & (soft >= SOLID), 1.0, np.clip(soft, 0, 1)).astype(np.float32)


def support_points(alpha: np.ndarray) -> list[tuple[int, int, int]]:
    """Where the product stands: ``(x0, x1, y)`` for each foot (columns ``x0..x1-1``, floor row
    ``y``).

    A foot is a run of columns whose lowest product pixel is the lowest in its neighbourhood
    (a local maximum of the bottom profile, within 2 % of the product's height), in the lower
    third of the product: the tips of a chair's four legs, front ones lower in the picture than
    back ones, a pedestal's base, a sofa's whole bottom edge. Between the legs the profile
    rises to the seat or the rails, which stand on nothing.
    """
    from scipy.ndimage import maximum_filter1d

    inside = alpha >= 0.5
    columns = inside.any(axis=0)
    if not columns.any():
        return []
    h = alpha.shape[0]
    bottom = np.where(columns, h - 1 - np.argmax(inside[::-1], axis=0), -1)
    rows = np.flatnonzero(inside.any(axis=1))
    top, low = int(rows[0]), int(rows[-1])
    height = low - top + 1
    xs = np.flatnonzero(columns)
    window = max(3, int(round(0.08 * (xs[-1] - xs[0] + 1)))) | 1
    tolerance = max(1.0, 0.02 * height)
    foot = columns & (bottom >= maximum_filter1d(bottom, window) - tolerance)
    foot &= bottom >= low - height / 3.0
    feet = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], foot.astype(np.int8), [0]])))
    for x0, x1 in zip(edges[::2], edges[1::2], strict=True):
        feet.append((int(x0), int(x1), int(bottom[x0:x1].max())))
    return feet


def contact_shadow(alpha: np.ndarray, strength: float = 0.45, spread: float = 0.04) -> np.ndarray:
    """Shadow darkness (float32 HxW in [0, 1]) cast on the floor by a product of ``alpha``.

    Two terms, as in studio composites, both anchored on the product's :func:`support_points`:
    a tight contact shadow under every foot (a flat ellipse as wide as the foot, blurred by
    under 1 % of the product's size) and a soft ambient-occlusion pool over the floor between
    the feet (their convex hull, blurred by ``spread`` of the product's size). Multiply the
    scene by ``1 - shadow`` *outside* the product.
    """
    feet = support_points(alpha)
    if not feet:
        return np.zeros_like(alpha, dtype=np.float32)
    inside = alpha >= 0.5
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    size = max(int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
    h, w = alpha.shape
    thin = max(1, int(round(0.012 * size)))
    contact = np.zeros((h, w), np.float32)
    pool = np.zeros((h, w), np.float32)
    points = []
    for x0, x1, y in feet:
        centre = ((x0 + x1 - 1) // 2, y)
        axes = (max(thin, (x1 - x0) // 2 + thin), thin)
        cv2.ellipse(contact, centre, axes, 0, 0, 360, 1.0, -1)
        points += [(x0 - thin, y - thin), (x1 - 1 + thin, y - thin), (x0, y + thin), (x1, y + thin)]
    cv2.fillConvexPoly(pool, cv2.convexHull(np.array(points, np.int32)), 1.0)
    contact = wide_blur(contact, max(1.0, 0.008 * size))
    pool = wide_blur(pool, max(1.0, spread * size))
    shadow = 0.6 * pool / max(float(pool.max()), 1e-6) + 0.4 * contact / max(
        float(contact.max()), 1e-6
    )
    return np.clip(strength * shadow, 0.0, 1.0).astype(np.float32)


DEFAULT_SOFTNESS = 0.03
"""A cast shadow's edge blur (sigma, share of the object's height) when the scene's own shadow
does not show one: the soft daylight of most interior photographs."""


def cast_shadow(
    alpha: np.ndarray,
    light_dx: float,
    strength: float,
    length: float = 0.3,
    softness: float = DEFAULT_SOFTNESS,
) -> np.ndarray:
    """Shadow darkness (float32 HxW) the product casts on the floor, away from the light.

    The silhouette is laid on the floor behind the product: squashed to ``length`` of its
    height about its floor line (the foreshortening of a floor seen from eye height) and
    sheared sideways by ``light_dx`` (−1..1, the side the shadow falls to), then blurred more
    the further it reaches from the feet (penumbrae widen with distance). ``strength`` is the
    darkness at the feet, measured on the scene's own objects by
    :func:`staging.compose.scene.object_shadow`.
    """
    inside = (alpha >= 0.5).astype(np.float32)
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0 or strength <= 0:
        return np.zeros_like(alpha, dtype=np.float32)
    top, floor = int(rows[0]), int(rows[-1])
    height = floor - top + 1
    # Row y of the product lands on floor - length*(floor - y); x moves by shear*(floor - y).
    shear = light_dx * length * 1.5
    matrix = np.array(
        [[1.0, -shear, shear * floor], [0.0, length, (1 - length) * floor]], np.float32
    )
    h, w = alpha.shape
    shadow = cv2.warpAffine(inside, matrix, (w, h), flags=cv2.INTER_LINEAR)
    near = wide_blur(shadow, max(1.0, softness * height))
    far = wide_blur(shadow, max(1.0, 3 * softness * height))
    reach = np.clip((floor - np.arange(h, dtype=np.float32)) / max(1.0, length * height), 0, 1)
    blended = near * (1 - reach[:, None]) + far * reach[:, None]
    fade = 1.0 - 0.6 * reach[:, None]  # lighter towards its far end
    return np.clip(strength * blended * fade, 0.0, 1.0).astype(np.float32)


def noise_sigma(grey: np.ndarray) -> float:
    """Noise standard deviation of a grey image (Immerkær 1996, "Fast noise variance
    estimation"): the mean absolute response to a Laplacian-difference kernel that cancels
    image structure up to second order."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(grey.astype(np.float32), -1, kernel)[1:-1, 1:-1])
    return float(np.sqrt(np.pi / 2) * response.mean() / 6)


def match_grain(
    product: np.ndarray, alpha: np.ndarray, scene: np.ndarray, seed: int = 0
) -> np.ndarray:
    """The product with noise added up to the scene's noise level (float32 RGB).

    A catalog shot is cleaner than a room photo; pasted as is it looks like a sticker. The
    noise levels are estimated by :func:`noise_sigma`; only the missing variance is added, so
    a product that is already as noisy as the scene is left alone.
    """
    inside = alpha >= 0.5
    if not inside.any():
        return product.astype(np.float32)
    grey = lambda rgb: cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)  # noqa: E731
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    crop = product[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scene_sigma = noise_sigma(grey(scene))
    product_sigma = noise_sigma(grey(crop)) if min(crop.shape[:2]) >= 8 else 0.0
    missing = np.sqrt(max(0.0, scene_sigma**2 - product_sigma**2))
    if missing < 0.3:
        return product.astype(np.float32)
    noise = np.random.default_rng(seed).normal(0.0, missing, alpha.shape).astype(np.float32)
    return np.clip(product.astype(np.float32) + noise[..., None], 0, 255)


def harmonize(
    product: np.ndarray,
    alpha: np.ndarray,
    scene: np.ndarray,
    amount: float = 0.25,
    max_lightness: float = 8.0,
    max_chroma: float = 4.0,
) -> np.ndarray:
    """The product's colours shifted a little towards the scene around it (float32 RGB).

    The shift is ``amount`` of the difference between the mean Lab colour of a ring of scene
    around the product and the product's own mean, capped at ``max_lightness`` (L, 0..255
    scale) and ``max_chroma`` (a, b). Only the mean moves: texture, contrast and the product's
    identity stay.
    """
    inside = alpha >= 0.5
    if not inside.any():
        return product.astype(np.float32)
    size = max(3, int(round(0.05 * np.sqrt(inside.sum()))) * 2 + 1)
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    ring &= ~inside
    if not ring.any():
        return product.astype(np.float32)
    to_lab = lambda rgb: cv2.cvtColor(  # noqa: E731 - a local one-liner reads best here
        np.clip(rgb, 0, 255).astype(np.uint8)[None], cv2.COLOR_RGB2LAB
    )[0].astype(np.float32)
    product_lab = cv2.cvtColor(np.clip(product, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(
        np.float32
    )
    scene_mean = to_lab(scene[ring]).mean(axis=0)
    product_mean = product_lab[inside].mean(axis=0)
    shift = amount * (scene_mean - product_mean)
    caps = np.array([max_lightness, max_chroma, max_chroma], np.float32)
    shift = np.clip(shift, -caps, caps)
    shifted = np.clip(product_lab + shift, 0, 255).astype(np.uint8)
    return cv2.cvtColor(shifted, cv2.COLOR_LAB2RGB).astype(np.float32)


def composite(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background`` as RGB uint8.

    Where alpha is solid the foreground's pixels come through exactly (no rounding drift).
    """
    a = alpha.astype(np.float32)[..., None]
    out = a * foreground.astype(np.float32) + (1 - a) * background.astype(np.float32)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    solid = alpha >= SOLID
    out[solid] = np.clip(np.rint(foreground[solid]), 0, 255).astype(np.uint8)
    return out


def product_ssim(result: np.ndarray, reference: np.ndarray, alpha: np.ndarray) -> float:
    """SSIM of the product region of ``result`` against ``reference`` (both scene-sized).

    Only the product's solid pixels are compared (elsewhere the reference is copied in), over
    the product's bounding box, so an untouched paste scores exactly 1.0.
    """
    solid = alpha >= SOLID
    if not solid.any():
        return 1.0
    rows = np.flatnonzero(solid.any(axis=1))
    cols = np.flatnonzero(solid.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    ref = np.clip(np.rint(reference[y0:y1, x0:x1]), 0, 255).astype(np.uint8)
    got = np.where(solid[y0:y1, x0:x1, None], result[y0:y1, x0:x1], ref)
    if min(ref.shape[:2]) < 7:  # SSIM's window needs 7 px; tiny products compare exactly
        return 1.0 if np.array_equal(got, ref) else 0.0
    return float(structural_similarity(got, ref, channel_axis=2, data_range=255))


harmonise = harmonize  # the former spelling; the option that turns it on was always harmonize=
