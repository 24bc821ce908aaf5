"""``staging eval inpaint``: fill product-shaped holes in room photos, compare with the truth.

Copy-paste staging (paper §5.3) removes a product from a staged room and inpaints the hole, so
the holes measured here are product silhouettes: un-staged product shots on white are cut out
with a near-white threshold, dilated (a segmentation's safety margin) and dropped onto room
photos at floor-level positions. The room's own pixels under the hole are the ground truth.

Protocol (all deterministic given ``seed``):

* rooms are resized to ``width`` px wide (512 by default);
* each room gets one hole whose height is U(20 %, 40 %) of the room's height, its bottom
  between 75 % and 97 % of the height ("standing on the floor") and its width at most 60 % of
  the room's;
* silhouettes come from ``products`` (default: a ``products`` folder beside the rooms), and
  from procedural shapes (:func:`staging.evaluate.synth.procedural_object`) when there is none.

Metrics, per image then averaged:

* ``hole_psnr``: PSNR (dB, 8-bit) over the hole's pixels only;
* ``hole_ssim``: SSIM (7x7 window, RGB) over the hole's bounding box;
* ``wbl``: boundary-weighted L1 in [0, 1] over the hole: weight 0.9 on a band of ``band`` px
  along the hole's edge and 0.1 elsewhere in the hole, the weights of the paper's weighted
  boundary loss (§5.3.1), normalised by the weights' sum. Lower is better;
* ``texture``: the fill's texture energy over the truth's, inside the hole (standard deviation
  of the Laplacian of the grey image, 1 px in from the hole's edge): 1 is as much texture as
  the real content, near 0 a smear. PSNR rewards smears (a blur is the least-squares guess),
  so read it beside this one and beside the saved images;
* ``seconds_per_image``: the inpainting call only, after one untimed warm-up call (model
  loading is not counted).

A ``reference`` backend (OpenCV Telea by default) runs on the very same holes, because
absolute figures swing with the sample of rooms and holes (measured: BENCHMARKS.md, Design
measurements once kept in docstrings).
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from staging.errors import StagingError
from staging.inpaint.base import context_window
from staging.io import list_images, save_image

WBL_BOUNDARY = 0.9  # lambda_boundary of the paper
WBL_INTERIOR = 0.1  # lambda_non-boundary
PSNR_CAP = 100.0  # dB, for a perfect fill (keeps JSON finite)
METRICS = ("hole_psnr", "hole_ssim", "wbl", "texture")


# --------------------------------------------------------------------------- silhouettes


def product_silhouette(rgb: np.ndarray, white: int = 235) -> np.ndarray | None:
    """The product's mask in a shot on white: pixels not part of the near-white background
    connected to the frame. None when the shot is not on white or the product is tiny/huge."""
    h, w = rgb.shape[:2]
    near_white = (rgb.min(axis=2) >= white).astype(np.uint8)
    border = np.concatenate([near_white[0], near_white[-1], near_white[:, 0], near_white[:, -1]])
    if border.mean() < 0.6:
        return None  # not a shot on white
    n, labels = cv2.connectedComponents(near_white, connectivity=4)
    edge_labels = np.unique(
        np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])[border > 0]
    )
    background = np.isin(labels, edge_labels) & (near_white > 0)
    product = ~background
    product = cv2.morphologyEx(
        product.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
    ).astype(bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(product.astype(np.uint8), 8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= 0.05 * areas.max())
    product = np.isin(labels, keep)
    fraction = product.mean()
    if not 0.03 <= fraction <= 0.85:
        return None
    return product


def _crop(mask: np.ndarray) -> np.ndarray:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return mask[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]


@functools.lru_cache(maxsize=4)
def _procedural_silhouettes(count: int = 10, seed: int = 0) -> list[np.ndarray]:
    from staging.evaluate.synth import procedural_object

    rng = np.random.default_rng(seed)
    kinds = ("chair", "lamp", "plant", "box", "ring")
    return [
        _crop(procedural_object(kinds[i % len(kinds)], rng, size=256)[1] >= 0.5)
        for i in range(count)
    ]


def load_silhouettes(products: Path | None, limit: int = 200) -> list[np.ndarray]:
    """Cropped bool silhouettes from the shots in ``products`` (procedural ones if None)."""
    if products is None:
        return list(_procedural_silhouettes())
    from staging.io import load_image

    out = []
    for path in list_images(products):
        try:
            sil = product_silhouette(load_image(path))
        except StagingError:
            continue
        if sil is not None:
            out.append(_crop(sil))
        if len(out) >= limit:
            break
    if not out:
        raise StagingError(f"No product shot on a white background found in {products}.")
    return out


# --------------------------------------------------------------------------- holes


def _rng_for(name: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_hole(
    shape: tuple[int, int],
    silhouettes: list[np.ndarray],
    rng: np.random.Generator,
    height_range: tuple[float, float] = (0.2, 0.4),
    dilate: float = 0.012,
    max_width: float = 0.6,
) -> np.ndarray:
    """A product-shaped bool hole on an image of ``shape`` (H, W), standing on the "floor".

    The dilated hole's height is ``height_range`` of the image height; ``dilate`` is the
    dilation radius as a fraction of the image width (about 6 px at 512 px).
    """
    h, w = shape
    radius = max(1, int(round(dilate * w)))
    for _ in range(100):
        sil = silhouettes[int(rng.integers(len(silhouettes)))]
        if rng.random() < 0.5:
            sil = sil[:, ::-1]
        target_h = rng.uniform(*height_range) * h
        scale = max(1.0, target_h - 2 * radius) / sil.shape[0]
        sh = max(1, int(round(sil.shape[0] * scale)))
        sw = max(1, int(round(sil.shape[1] * scale)))
        if sw + 2 * radius > max_width * w or sh + 2 * radius > h - 4:
            continue
        small = cv2.resize(sil.astype(np.uint8) * 255, (sw, sh), interpolation=cv2.INTER_AREA)
        small = np.pad(small >= 128, radius).astype(np.uint8)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        shape_mask = cv2.dilate(small, kernel).astype(bool)
        hh, ww = shape_mask.shape
        bottom = int(round(rng.uniform(0.75, 0.97) * h))
        bottom = min(max(bottom, hh + 2), h - 2)
        x0 = int(rng.integers(2, max(3, w - ww - 2)))
        hole = np.zeros((h, w), bool)
        hole[bottom - hh : bottom, x0 : x0 + ww] = shape_mask
        return hole
    raise StagingError(f"Could not place a product-shaped hole on a {w}x{h} image.")


def resize_width(rgb: np.ndarray, width: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w == width:
        return rgb
    height = max(1, int(round(h * width / w)))
    interp = cv2.INTER_AREA if width < w else cv2.INTER_CUBIC
    return cv2.resize(rgb, (width, height), interpolation=interp)


# --------------------------------------------------------------------------- metrics


def boundary_weights(hole: np.ndarray, band: int = 8) -> np.ndarray:
    """float32 weights over the hole: 0.9 within ``band`` px of its edge, 0.1 deeper inside,
    0 outside (where a bit-exact inpainter makes no error)."""
    # distanceTransform: distance of each hole pixel to the nearest known (zero) pixel.
    dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    weights = np.where(dist <= band, WBL_BOUNDARY, WBL_INTERIOR).astype(np.float32)
    weights[~hole] = 0.0
    return weights


def inpaint_metrics(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray, band: int = 8) -> dict:
    """Hole PSNR (dB), SSIM over the hole's bounding box and boundary-weighted L1 in [0, 1]."""
    from skimage.metrics import structural_similarity

    if not hole.any():
        raise StagingError("The hole is empty: nothing to measure.")
    p = pred.astype(np.float64)
    t = truth.astype(np.float64)
    err = p[hole] - t[hole]
    mse = float(np.mean(err**2))
    psnr = PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))
    ys = np.flatnonzero(hole.any(axis=1))
    xs = np.flatnonzero(hole.any(axis=0))
    h, w = hole.shape
    # At least 7 px a side (SSIM's window) when the image allows it.
    y0, y1 = _grow(ys[0], ys[-1] + 1, 7, h)
    x0, x1 = _grow(xs[0], xs[-1] + 1, 7, w)
    win = min(7, y1 - y0, x1 - x0)
    win -= 1 - win % 2  # odd
    if win >= 3:
        ssim = structural_similarity(
            p[y0:y1, x0:x1], t[y0:y1, x0:x1], data_range=255.0, channel_axis=2, win_size=win
        )
    else:
        ssim = float("nan")
    weights = boundary_weights(hole, band)
    l1 = np.abs(p - t).mean(axis=2) / 255.0
    wbl = float((weights * l1).sum() / weights.sum())
    return {
        "hole_psnr": float(psnr),
        "hole_ssim": float(ssim),
        "wbl": wbl,
        "texture": texture_ratio(pred, truth, hole),
    }


def texture_ratio(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """Texture energy of ``pred`` over that of ``truth`` inside ``hole`` (see the module doc);
    NaN when the truth is flat there."""
    inner = cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not inner.any():
        return float("nan")

    def energy(rgb: np.ndarray) -> float:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY)
        return float(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)[inner].std())

    real = energy(truth)
    return float("nan") if real < 1e-6 else energy(pred) / real


def _grow(lo: int, hi: int, size: int, limit: int) -> tuple[int, int]:
    lo, hi = int(lo), int(hi)
    while hi - lo < size and (lo > 0 or hi < limit):
        lo = max(0, lo - 1)
        hi = min(limit, hi + 1) if hi - lo < size else hi
    return lo, hi


# --------------------------------------------------------------------------- evaluation


def make_cases(
    images: Path,
    products: Path | None = None,
    width: int = 512,
    seed: int = 0,
    limit: int = 0,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, room, hole)`` test cases: rooms ``width`` px wide with one product hole each."""
    from staging.io import load_image

    paths = list_images(images)
    if not paths:
        raise StagingError(f"No images in {images}.")
    if limit:
        paths = paths[:limit]
    if products is None:
        sibling = Path(images).parent / "products"
        products = sibling if sibling.is_dir() else None
    silhouettes = load_silhouettes(products)
    cases = []
    for path in paths:
        room = resize_width(load_image(path), width)
        hole = make_hole(room.shape[:2], silhouettes, _rng_for(path.name, seed))
        cases.append((path.name, room, hole))
    return cases


def evaluate_inpainting(
    engine,
    images: Path,
    backend: str | None = None,
    products: Path | None = None,
    width: int = 512,
    seed: int = 0,
    limit: int = 0,
    band: int = 8,
    reference: str | None = "telea",
    save_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Mean hole PSNR, hole-bbox SSIM, WBL and seconds per image of ``engine.inpaint``.

    ``reference`` (default OpenCV Telea; None to skip) runs on the same holes and is reported
    beside, with the differences. ``save_dir`` keeps each room with its hole beside the
    result, the results alone in ``save_dir/<backend>/``, and a square around each hole of the
    result and of the truth (``<backend>-hole/``, ``truth-hole/``) for ``staging eval
    realism``.
    """
    from staging.inpaint import DEFAULT

    name = backend or DEFAULT
    cases = make_cases(Path(images), products, width=width, seed=seed, limit=limit)
    rows = []
    seconds = 0.0
    ref_rows = []
    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
    # Warm-up, not timed: loads the model (or the solver's libraries) once.
    engine.inpaint(cases[0][1], cases[0][2], backend=name)
    for image_name, room, hole in tqdm(cases, desc=f"eval inpaint {name}", disable=not progress):
        start = time.perf_counter()
        out = engine.inpaint(room, hole, backend=name)
        seconds += time.perf_counter() - start
        rows.append(
            {
                "image": image_name,
                "hole_height": round(float(hole.any(axis=1).sum() / hole.shape[0]), 3),
                **inpaint_metrics(out, room, hole, band),
            }
        )
        if reference and reference != name:
            ref = engine.inpaint(room, hole, backend=reference)
            ref_rows.append(inpaint_metrics(ref, room, hole, band))
        if save_dir is not None:
            shown = room.copy()
            shown[hole] = (255, 0, 255)
            stem, label = Path(image_name).stem, re.sub(r"[^A-Za-z0-9._-]+", "_", name)
            save_image(save_dir / f"{stem}.{label}.jpg", np.concatenate([shown, out], axis=1))
            save_image(save_dir / label / f"{stem}.png", out)  # for `staging eval realism`
            # The hole's surroundings, filled and true: realism of the fill itself (a whole
            # room differs from the truth only inside the hole).
            y0, y1, x0, x1 = context_window(hole, min_side=0, context=1.5)
            save_image(save_dir / f"{label}-hole" / f"{stem}.png", out[y0:y1, x0:x1])
            save_image(save_dir / "truth-hole" / f"{stem}.png", room[y0:y1, x0:x1])
    report: dict = {"backend": name, "images": len(rows), "width": width, "seed": seed}
    for metric in METRICS:
        report[metric] = float(np.nanmean([r[metric] for r in rows]))
    report["seconds_per_image"] = seconds / len(rows)
    report["hole_height_mean"] = float(np.mean([r["hole_height"] for r in rows]))
    if ref_rows:
        report["reference"] = {"backend": reference}
        for metric in METRICS:
            value = float(np.nanmean([r[metric] for r in ref_rows]))
            report["reference"][metric] = value
            report["reference"][f"delta_{metric}"] = report[metric] - value
    worst = sorted(rows, key=_psnr)[:5]
    report["worst"] = {r["image"]: round(r["hole_psnr"], 2) for r in worst}
    report["per_image"] = rows
    return report


def _psnr(row: dict) -> float:
    return row["hole_psnr"]
