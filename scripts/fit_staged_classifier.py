"""Fit the logistic model of :mod:`staging.segment.staged` and print the weights to hard-code.

Data (read in place, never copied): ``../shared/data/ikea`` (products.csv: un-staged catalog
shots; rooms.csv: staged room scenes) and ``../shared/data/u2net-official/test_images``
(natural photos; only the clearly scene-like ones are used as staged, see ``U2NET_LABELS``).

Augmentation, so the model does not learn "white border = un-staged":

* every product shot also appears with its white backdrop recoloured *multiplicatively*
  (so shadows and anti-aliased edges survive) to a pastel, light grey, darker studio colour,
  linear gradient or vignette sweep, optionally with a soft elliptical floor shadow, sensor
  noise and JPEG re-compression -> un-staged;
* every room also appears as random crops (40-90% of the area, any aspect 3:4..4:3) -> staged.

Split: a file goes to validation when ``md5(file name) % 5 == 0`` (about 20%); augmented
copies follow their source file, so no scene or product is on both sides.

Usage::

    .venv/bin/python scripts/fit_staged_classifier.py [--data ../shared/data] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from staging.segment.staged import FEATURE_NAMES, classify_staged, staged_features

ROOT = Path(__file__).resolve().parents[1]
# U^2-Net's test photos: 1 = a scene, 0 = plain backdrop, None = ambiguous (not used for the
# fit, reported separately).
U2NET_LABELS: dict[str, int | None] = {
    "0002-01.jpg": 0,  # studio portrait on a grey gradient backdrop
    "0003.jpg": 1,  # alpaca in a field
    "bike.jpg": 1,
    "boat.jpg": 1,
    "girl.png": 1,  # girl and horse on grass
    "hockey.png": 1,
    "horse.jpg": 1,
    "im_01.png": None,  # aeroplanes against a plain sky
    "im_14.png": 1,
    "im_21.png": None,  # monkey, strongly blurred background
    "im_27.png": None,  # ant, desert at sunset (smooth)
    "lamp2_meitu_1.jpg": None,  # lamp on a plain desk against a plain wall
    "long.jpg": None,  # calligraphy filling the frame
    "rifle1.jpg": 1,
    "rifle2.jpeg": 1,
    "sailboat3.jpg": 1,
    "vangogh.jpeg": 1,  # couple on a country road
    "whisk.png": 1,  # meerkat, green bokeh
}


# +1: a larger value may only mean "more staged"; -1: only "less staged".
SIGNS = {
    "border_fit": -1,
    "border_resid": 1,
    "bg_noise": 1,
    "bg_area": -1,
    "border_edges": 1,
    "border_colors": 1,
    "border_chroma": 1,
    "border_lines": 1,
}


def is_validation(name: str) -> bool:
    return int(hashlib.md5(name.encode()).hexdigest(), 16) % 5 == 0


def _rng(name: str, salt: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.md5((salt + name).encode()).hexdigest()[:12], 16))


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _hsv_colour(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]):
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*s) * 255, rng.uniform(*v) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def backdrop_mask(img: np.ndarray) -> np.ndarray:
    """Soft (0..1) mask of the near-white, low-chroma backdrop connected to the border."""
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    light = lab[..., 0] * 100 / 255
    chroma = np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    cand = ((light > 75) & (chroma < 8)).astype(np.uint8)
    _, labels = cv2.connectedComponents(cand, connectivity=4)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.unique(edge[edge > 0])
    mask = np.isin(labels, keep).astype(np.float32)
    return cv2.GaussianBlur(mask, (0, 0), 1.0)


def recolour_plain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Un-staged augmentation: the product on a non-white plain backdrop."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.choice(
        ["pastel", "grey", "studio", "gradient", "vignette"], p=[0.3, 0.2, 0.1, 0.25, 0.15]
    )
    if kind == "pastel":
        field = np.broadcast_to(_hsv_colour(rng, (0.08, 0.45), (0.82, 1.0)), (h, w, 3))
    elif kind == "grey":
        field = np.full((h, w, 3), rng.uniform(150, 235), np.float32)
    elif kind == "studio":  # a darker or more saturated solid backdrop
        field = np.broadcast_to(_hsv_colour(rng, (0.2, 0.8), (0.35, 0.85)), (h, w, 3))
    elif kind == "gradient":
        c0 = _hsv_colour(rng, (0.0, 0.5), (0.6, 1.0))
        c1 = _hsv_colour(rng, (0.0, 0.5), (0.6, 1.0))
        ang = rng.uniform(0, 2 * np.pi)
        t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h + 1) / 2
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        field = c0 * (1 - t[..., None]) + c1 * t[..., None]
    else:  # vignette / studio sweep: bright centre, darker corners
        c = _hsv_colour(rng, (0.0, 0.35), (0.75, 1.0))
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        r = np.hypot((xx - cx) / w, (yy - cy) / h)
        field = c * (1 - rng.uniform(0.2, 0.55) * np.clip(r / 0.7, 0, 1) ** 2)[..., None]
    mask = backdrop_mask(img)[..., None]
    factor = (1 - mask) + mask * (np.asarray(field, np.float32) / 255.0)
    if rng.random() < 0.6:  # soft floor shadow under the product
        fg = mask[..., 0] < 0.5
        ys, xs = np.nonzero(fg)
        if ys.size:
            shadow = np.zeros((h, w), np.float32)
            centre = (int(xs.mean()), int(min(h - 1, ys.max())))
            axes = (
                max(4, int((xs.max() - xs.min()) * rng.uniform(0.4, 0.7))),
                max(3, int(h * rng.uniform(0.03, 0.08))),
            )
            cv2.ellipse(shadow, centre, axes, 0, 0, 360, 1.0, -1)
            shadow = cv2.GaussianBlur(shadow, (0, 0), max(axes) * 0.3)
            shadow *= rng.uniform(0.2, 0.45) / max(float(shadow.max()), 1e-6)
            factor = factor * (1 - shadow * mask[..., 0])[..., None]
    out = img.astype(np.float32) * factor
    out += rng.normal(0, rng.uniform(0.5, 2.5), out.shape)
    return _jpeg(np.clip(out, 0, 255).astype(np.uint8), int(rng.integers(80, 96)))


def random_crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Staged augmentation: a crop of a scene, re-sized and re-compressed."""
    h, w = img.shape[:2]
    area = rng.uniform(0.4, 0.9) * h * w
    aspect = np.exp(rng.uniform(np.log(0.75), np.log(4 / 3)))
    ch = int(min(h, np.sqrt(area / aspect)))
    cw = int(min(w, ch * aspect))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = img[y0 : y0 + ch, x0 : x0 + cw]
    side = int(rng.integers(400, 800))
    s = side / max(ch, cw)
    crop = cv2.resize(
        crop, (max(8, int(cw * s)), max(8, int(ch * s))), interpolation=cv2.INTER_AREA
    )
    if rng.random() < 0.5:
        crop = crop[:, ::-1].copy()
    return _jpeg(crop, int(rng.integers(80, 96)))


def _job(item: tuple[str, str, str, int]) -> tuple[str, str, int, list[float]]:
    path, group, aug, label = item
    img = _load(Path(path))
    name = Path(path).name
    if aug.startswith("plain"):
        img = recolour_plain(img, _rng(name, aug))
    elif aug.startswith("crop"):
        img = random_crop(img, _rng(name, aug))
    f = staged_features(img, all_features=True)
    return path, group, label, [f[k] for k in FEATURE_NAMES]


def build_items(data: Path, n_plain: int, n_crops: int) -> list[tuple[str, str, str, int]]:
    ikea = data / "ikea"
    items: list[tuple[str, str, str, int]] = []
    with open(ikea / "products.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p = str(ikea / row["image"])
            items.append((p, "product", "", 0))
            items += [(p, "plain", f"plain{i}", 0) for i in range(n_plain)]
    with open(ikea / "rooms.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p = str(ikea / row["image"])
            items.append((p, "room", "", 1))
            items += [(p, "room_crop", f"crop{i}", 1) for i in range(n_crops)]
    u2 = data / "u2net-official" / "test_images"
    for name, label in U2NET_LABELS.items():
        if (u2 / name).exists():
            items.append(
                (
                    str(u2 / name),
                    "u2net" if label is not None else "u2net_ambiguous",
                    "",
                    -1 if label is None else label,
                )
            )
    return items


def fit_logistic(x: np.ndarray, y: np.ndarray, sw: np.ndarray, l2: float) -> np.ndarray:
    """Weighted, L2-regularised logistic regression by Newton's method; returns [bias, w...]."""
    a = np.hstack([np.ones((len(x), 1)), x])
    theta = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], l2)
    reg[0] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(a @ theta, -50, 50)))
        grad = a.T @ (sw * (p - y)) + reg * theta
        hess = (a * (sw * p * (1 - p))[:, None]).T @ a + np.diag(reg) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta


def report(name: str, y: np.ndarray, p: np.ndarray) -> None:
    pred = p >= 0.5
    tp, fn = int((pred & (y == 1)).sum()), int((~pred & (y == 1)).sum())
    tn, fp = int((~pred & (y == 0)).sum()), int((pred & (y == 0)).sum())
    tpr = tp / max(tp + fn, 1)
    tnr = tn / max(tn + fp, 1)
    prec = tp / max(tp + fp, 1)
    print(
        f"{name}: n={len(y)}  balanced acc={(tpr + tnr) / 2:.4f}  staged precision={prec:.4f}"
        f"  staged recall={tpr:.4f}  un-staged recall={tnr:.4f}"
    )
    print(f"    confusion [rows true un-staged/staged, cols pred]: [[{tn}, {fp}], [{fn}, {tp}]]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--plain", type=int, default=2, help="recoloured copies per product")
    ap.add_argument("--crops", type=int, default=4, help="random crops per room")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/staged_features.npz"))
    args = ap.parse_args()

    items = build_items(args.data, args.plain, args.crops)
    if args.cache.exists():
        z = np.load(args.cache, allow_pickle=True)
        paths, groups, labels, feats = z["paths"], z["groups"], z["labels"], z["feats"]
        print(f"features from cache {args.cache} (delete it after changing the features)")
    else:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(args.jobs) as pool:
            res = list(pool.map(_job, items, chunksize=16))
        print(f"features of {len(res)} images in {time.perf_counter() - t0:.0f} s")
        paths = np.array([r[0] for r in res])
        groups = np.array([r[1] for r in res])
        labels = np.array([r[2] for r in res])
        feats = np.array([r[3] for r in res], dtype=np.float64)
        np.savez(args.cache, paths=paths, groups=groups, labels=labels, feats=feats)

    val = np.array([is_validation(Path(p).name) for p in paths])
    use = labels >= 0
    tr = use & ~val
    mean = feats[tr].mean(0)
    scale = feats[tr].std(0) + 1e-9
    xs = (feats - mean) / scale
    y = labels.astype(np.float64)
    # Balance: each class carries equal total weight; inside the un-staged class real shots and
    # recoloured shots weigh the same in total; same for whole rooms vs crops vs photos.
    sw = np.zeros(len(y))
    for parts in (("product", "plain"), ("room", "room_crop", "u2net")):
        for g in parts:
            m = tr & (groups == g)
            if m.any():
                sw[m] = 1.0 / (len(parts) * m.sum())
    sw *= tr.sum() / sw.sum()
    # Sign constraints (active set): a feature may only push the way its meaning says, e.g. a
    # busier border can never make an image *less* staged. Unconstrained, the fit gives
    # border_chroma and border_lines negative weights (collinear with border_edges; the
    # saturated synthetic backdrops make "colourful border" look un-staged), which then fails
    # on colourful scenes outside this data. A feature whose weight has the wrong sign is
    # dropped (weight 0) and the model refitted, until all signs agree.
    active = list(range(len(FEATURE_NAMES)))
    while True:
        th = fit_logistic(xs[tr][:, active], y[tr], sw[tr], args.l2)
        wrong = [(th[1 + k] * SIGNS[FEATURE_NAMES[j]], j) for k, j in enumerate(active)]
        wrong = [t for t in wrong if t[0] < 0]
        if not wrong:
            break
        active.remove(min(wrong)[1])
    theta = np.zeros(len(FEATURE_NAMES) + 1)
    theta[0] = th[0]
    theta[1 + np.array(active)] = th[1:]
    p = 1 / (1 + np.exp(-(theta[0] + xs @ theta[1:])))

    np.set_printoptions(precision=4, suppress=True)
    print("\nFEATURE_NAMES =", FEATURE_NAMES)
    print("_FEATURE_MEAN =", repr(np.round(mean, 4)))
    print("_FEATURE_SCALE =", repr(np.round(scale, 4)))
    print("_WEIGHTS =", repr(np.round(theta[1:], 4)))
    print(f"_BIAS = {theta[0]:.4f}\n")

    real = np.isin(groups, ("product", "room", "u2net"))
    for split, m in (("train", tr), ("validation", use & val)):
        report(f"[{split}] real (products vs rooms + scene photos)", y[m & real], p[m & real])
        report(f"[{split}] all incl. augmented", y[m], p[m])
        for g in ("product", "plain", "room", "room_crop", "u2net"):
            mg = m & (groups == g)
            if mg.any():
                acc = float(((p[mg] >= 0.5) == (y[mg] == 1)).mean())
                print(f"    {g:10s} n={mg.sum():5d} accuracy={acc:.4f}")
    print("\nmistakes on real images (all splits):")
    for i in np.nonzero(real & use & ((p >= 0.5) != (y == 1)))[0]:
        print(f"  {'val' if val[i] else 'train'}  label={int(y[i])}  score={p[i]:.3f}  {paths[i]}")
    print("\nambiguous U^2-Net photos (not used):")
    for i in np.nonzero(groups == "u2net_ambiguous")[0]:
        print(f"  score={p[i]:.3f}  {Path(paths[i]).name}")

    # Speed of the hard-coded classifier on a 512x512 image.
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    for _ in range(5):
        classify_staged(img)
    t0 = time.perf_counter()
    for _ in range(50):
        classify_staged(img)
    print(f"\nclassify_staged at 512x512: {(time.perf_counter() - t0) / 50 * 1000:.2f} ms")


if __name__ == "__main__":
    main()
