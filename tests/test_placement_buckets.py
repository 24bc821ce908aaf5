"""Placement geometry, aspect-ratio buckets (seed 001), the generation cache and its bench."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from staging.cli import app
from staging.compose.buckets import (
    Bucket,
    bucket_canvas,
    bucket_for,
    bucket_for_placement,
    bucket_index,
    canvas_area,
    crop_for_placement,
    fit_product_size,
    plan_generations,
)
from staging.compose.placement import (
    PLACEMENTS,
    STANDARD_SIZES,
    Placement,
    get_placement,
    layout,
    parse_align,
    place_product,
)
from staging.errors import StagingError
from staging.evaluate.bench_buckets import bench_buckets
from staging.generate.cache import GenerationCache, product_hash

# -- fixtures -------------------------------------------------------------------------------


def _product(w: int = 120, h: int = 60, pad: int = 20, soft: bool = True):
    """A red ``w x h`` box with a soft (blurred) alpha edge, shot on *green*: any colour from
    the old backdrop that leaks into the placed product shows up as G > B."""
    import cv2

    rgb = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    rgb[:] = (0, 255, 0)
    alpha = np.zeros(rgb.shape[:2], np.float32)
    alpha[pad : pad + h, pad : pad + w] = 1.0
    if soft:
        alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
        alpha[alpha < 0.02] = 0.0
    rgb[alpha > 0] = (200, 30, 30)
    return rgb, alpha


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# -- placements -----------------------------------------------------------------------------


def test_placement_table_and_lookup():
    assert len(PLACEMENTS) >= 10 and len(STANDARD_SIZES) == 10
    assert all(name in PLACEMENTS for name in STANDARD_SIZES)
    mrec = get_placement("medium-rectangle")
    assert (mrec.width, mrec.height, mrec.aspect) == (300, 250, 1.2)
    assert get_placement("300x250") is mrec  # table sizes come back under their name
    assert get_placement((300, 250)) is mrec
    assert get_placement("Medium Rectangle") is mrec
    assert get_placement("4:5").size == (1080, 1350)
    assert get_placement("9:16").name == "story"
    assert get_placement("3:2").size == (1080, 720)  # long side 1080
    assert get_placement("640x480") == Placement("640x480", 640, 480)
    assert get_placement(Placement("x", 100, 50)).shape == (50, 100)
    for bad in ("banana", "10x10", "0:1", (0, 5), "99999x100", 3.5):
        with pytest.raises(StagingError):
            get_placement(bad)


def test_fill_is_share_of_the_limiting_dimension_and_aspect_is_kept():
    # a wide product in a square spans `fill` of the width; a tall one `fill` of the height
    wide = layout((400, 100), "square", fill=0.6, margin=0.0)
    x0, y0, x1, y1 = wide.box
    assert x1 - x0 == round(0.6 * 1080) and y1 - y0 == round(0.6 * 1080 / 4)
    tall = layout((100, 400), "square", fill=0.5, margin=0.0)
    x0, y0, x1, y1 = tall.box
    assert y1 - y0 == 540 and x1 - x0 == 135
    # a square product in a leaderboard is limited by the height
    lb = layout((200, 200), "leaderboard", fill=0.6, margin=0.0)
    x0, y0, x1, y1 = lb.box
    assert (x1 - x0, y1 - y0) == (54, 54)
    assert lb.fill == pytest.approx(0.6)
    for size in STANDARD_SIZES:
        spot = layout((333, 517), size)
        x0, y0, x1, y1 = spot.box
        assert abs((x1 - x0) / (y1 - y0) - 333 / 517) < 1.0 / min(x1 - x0, y1 - y0) + 1e-9


def test_margin_is_a_safe_area_and_wins_over_fill():
    spot = layout((100, 100), "medium-rectangle", fill=1.0, margin=0.1)
    m = 25  # 0.1 x short side 250
    x0, y0, x1, y1 = spot.box
    assert (y0, 250 - y1) == (m, m) and (y1 - y0) == 200
    assert spot.fill == pytest.approx(200 / 250)
    for size in STANDARD_SIZES:
        for align in ("center", "bottom-left", "top-right", "left", "bottom"):
            p = get_placement(size)
            m = round(0.05 * min(p.size))
            x0, y0, x1, y1 = layout((300, 120), p, fill=0.95, align=align, margin=0.05).box
            assert x0 >= m and y0 >= m and x1 <= p.width - m and y1 <= p.height - m


def test_alignment():
    m = round(0.05 * 1080)
    bl = layout((100, 200), "square", fill=0.4, align="bottom-left", margin=0.05).box
    assert bl[0] == m and bl[3] == 1080 - m
    tr = layout((100, 200), "square", fill=0.4, align="right top", margin=0.05).box
    assert tr[2] == 1080 - m and tr[1] == m
    c = layout((100, 200), "square", fill=0.4).box
    assert abs(c[0] - (1080 - c[2])) <= 1 and abs(c[1] - (1080 - c[3])) <= 1
    left = layout((100, 200), "square", fill=0.4, align="left").box
    assert left[0] == m and abs(left[1] - (1080 - left[3])) <= 1  # vertical stays centred
    assert parse_align("centre-bottom") == ("center", "bottom")
    assert parse_align("middle") == ("center", "center")
    for bad in ("left-right", "top bottom", "diagonal"):
        with pytest.raises(StagingError):
            parse_align(bad)


@pytest.mark.parametrize("size", ["medium-rectangle", "portrait", (64, 48)])
def test_place_product_pixels(size):
    rgb, alpha = _product()
    placed = place_product(rgb, alpha, size, fill=0.6, align="bottom", background=(255, 255, 255))
    p = get_placement(size)
    assert placed.image.shape == (p.height, p.width, 3) and placed.image.dtype == np.uint8
    assert placed.alpha.shape == (p.height, p.width) and placed.alpha.dtype == np.float32
    assert placed.box == layout(placed.product_size, size, fill=0.6, align="bottom").box
    assert placed.placement == p
    x0, y0, x1, y1 = placed.box
    # alpha lives inside the box only, and reaches 1 in the product's core
    assert placed.alpha.sum() == pytest.approx(placed.alpha[y0:y1, x0:x1].sum())
    assert placed.alpha.max() == pytest.approx(1.0, abs=1e-3) and placed.alpha.min() >= 0.0
    # coverage scales with the area: alpha mass is preserved by the resampling
    assert placed.alpha.sum() == pytest.approx(alpha.sum() * placed.scale**2, rel=0.05)
    # premultiplied resampling: red over white keeps G == B everywhere, no green halo
    img = placed.image.astype(int)
    assert np.abs(img[..., 1] - img[..., 2]).max() <= 2
    # outside the box: the plain background
    outside = np.ones(placed.alpha.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert (placed.image[outside] == 255).all()
    assert placed.mask.sum() > 0


def test_place_product_validates_input():
    rgb, alpha = _product()
    with pytest.raises(StagingError, match="empty"):
        place_product(rgb, np.zeros_like(alpha), "square")
    with pytest.raises(StagingError, match="match"):
        place_product(rgb, alpha[1:], "square")
    with pytest.raises(StagingError, match="RGB uint8"):
        place_product(rgb.astype(np.float32), alpha, "square")
    with pytest.raises(StagingError, match="fill"):
        place_product(rgb, alpha, "square", fill=1.5)
    with pytest.raises(StagingError, match="background"):
        place_product(rgb, alpha, "square", background=(0, 0))
    # bool masks and uint8 alpha are accepted as they are
    assert place_product(rgb, alpha > 0.5, "square").alpha.max() == 1.0
    assert place_product(rgb, (alpha * 255).astype(np.uint8), "square").box


# -- bucket maths (seed 001: B_D = ceil(log_r((P_D + D) / D))) -------------------------------


def test_bucket_index_hand_computed():
    assert bucket_index(0, 100, 1.2) == 0  # no padding: log_r(1) = 0
    assert bucket_index(20, 100, 1.2) == 1  # (20 + 100) / 100 = 1.2 = r^1: on the threshold
    assert bucket_index(21, 100, 1.2) == 2  # just above it
    assert bucket_index(44, 100, 1.2) == 2  # 1.44 = 1.2^2
    assert bucket_index(45, 100, 1.2) == 3
    assert bucket_index(100, 100, 2.0) == 1  # 2 = 2^1
    assert bucket_index(300, 100, 2.0) == 2  # 4 = 2^2
    with pytest.raises(StagingError):
        bucket_index(10, 100, 1.0)
    with pytest.raises(StagingError):
        bucket_index(-1, 100, 1.2)


def test_bucket_for_box_hand_computed():
    # box 100x150 at (100, 50) in 300x250: P_T = 50, P_B = 50, P_L = 100, P_R = 100
    # T/B: log_1.2((50 + 150) / 150) = log_1.2(1.333) = 1.58 -> 2
    # L/R: log_1.2((100 + 100) / 100) = log_1.2(2)    = 3.80 -> 4
    assert bucket_for((100, 50, 200, 200), (300, 250), r=1.2) == Bucket(2, 4, 2, 4, 1.2)
    # r = 2: T/B log_2(1.333) = 0.42 -> 1; L/R log_2(2) = 1 exactly -> 1
    assert bucket_for((100, 50, 200, 200), (300, 250), r=2.0) == Bucket(1, 1, 1, 1, 2.0)
    # asymmetric: flush left and top, P_R = 200 (ratio 3 -> log_1.2 3 = 6.03 -> 7),
    # P_B = 100 ((100 + 150) / 150 = 1.667 -> log_1.2 = 2.80 -> 3)
    b = bucket_for((0, 0, 100, 150), (300, 250), r=1.2)
    assert b == Bucket(top=0, right=7, bottom=3, left=0, r=1.2)
    assert b.key == "T0-R7-B3-L0-r1.2"
    with pytest.raises(StagingError):
        bucket_for((0, 0, 400, 10), (300, 250))


def test_buckets_depend_on_relative_layout_only():
    # the same layout at two scales of the same aspect: the same bucket (scale-free ratio)
    assert bucket_for_placement((300, 500), (300, 250)) == bucket_for_placement(
        (300, 500), (600, 500)
    )
    assert bucket_for_placement((300, 500), (300, 250)) == bucket_for_placement(
        (600, 1000), (300, 250)
    )
    # a very different placement lands in another bucket
    assert bucket_for_placement((300, 500), "leaderboard") != bucket_for_placement(
        (300, 500), "story"
    )


def test_bucket_canvas_padding_is_the_bins_upper_threshold():
    b = Bucket(2, 4, 2, 4, 1.2)
    canvas = bucket_canvas(b, (100, 150), multiple=1)
    # pads: ceil(150 * (1.44 - 1)) = 66 on T/B; ceil(100 * (1.2^4 - 1)) = ceil(107.36) = 108 L/R
    assert canvas.box == (108, 66, 208, 216)
    assert canvas.size == (100 + 2 * 108, 150 + 2 * 66)
    c8 = bucket_canvas(b, (100, 150))
    assert c8.width % 8 == 0 and c8.height % 8 == 0
    assert c8.product_size == (100, 150)
    assert c8.box[0] >= 108 and c8.box[1] >= 66
    assert c8.width - c8.box[2] >= 108 and c8.height - c8.box[3] >= 66


def test_fit_product_size_respects_the_pixel_budget():
    b = bucket_for_placement((300, 500), "leaderboard")
    w, h = fit_product_size(b, 300 / 500, max_pixels=512 * 512)
    canvas = bucket_canvas(b, (w, h))
    assert canvas.width * canvas.height <= 512 * 512
    assert canvas.width * canvas.height >= 0.85 * 512 * 512
    assert abs(w / h - 0.6) < 0.05
    w2, h2 = fit_product_size(b, 0.6, max_pixels=10**7, max_side=2048)
    assert max(bucket_canvas(b, (w2, h2)).size) <= 2048


def _generation(canvas, scale: float = 1.0) -> np.ndarray:
    """A fake generation: a smooth gradient with the product's box painted pure blue."""
    import cv2

    h, w = canvas.height, canvas.width
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([40 + 150 * xx / w, 40 + 150 * yy / h, np.full_like(xx, 40.0)], -1)
    x0, y0, x1, y1 = canvas.box
    img[y0:y1, x0:x1] = (0, 0, 255)
    img = img.astype(np.uint8)
    if scale != 1.0:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_NEAREST)
    return img


@pytest.mark.parametrize("align", ["center", "bottom-left", "top"])
def test_crops_land_the_product_where_place_product_does(align):
    rgb, alpha = _product(w=90, h=140, soft=False)
    product_size = (90, 140)
    for name in ("medium-rectangle", "half-page", "square", "portrait", (500, 400)):
        placed = place_product(rgb, alpha, name, fill=0.6, align=align)
        assert placed.product_size == product_size
        bucket = bucket_for_placement(product_size, name, fill=0.6, align=align)
        canvas = bucket_canvas(bucket, (180, 280))
        for scale in (1.0, 2.0):  # generations may come back at another resolution
            crop = crop_for_placement(
                _generation(canvas, scale), canvas, name, product_size, fill=0.6, align=align
            )
            p = get_placement(name)
            assert crop.shape == (p.height, p.width, 3)
            blue = (crop[..., 2] > 200) & (crop[..., 0] < 60)
            found = _bbox(blue)
            tol = 1
            assert max(abs(a - b) for a, b in zip(found, placed.box, strict=True)) <= tol, (
                name,
                scale,
                found,
                placed.box,
            )
            # around the product: background from the generation, not replicated borders
            x0, y0, x1, y1 = placed.box
            assert not blue[: max(0, y0 - 2)].any()


def test_crop_from_a_smaller_bucket_is_refused():
    product_size = (100, 100)
    square = bucket_canvas(bucket_for_placement(product_size, "square"), product_size)
    gen = _generation(square)
    assert crop_for_placement(gen, square, "square", product_size).shape == (1080, 1080, 3)
    with pytest.raises(StagingError, match="needs bucket"):
        crop_for_placement(gen, square, "leaderboard", product_size)


def test_plan_generations_counts():
    products = [(300, 500), (600, 1000), (1000, 250)]  # the first two share an aspect
    sizes = ["medium-rectangle", (600, 500), "leaderboard", "story"]  # 300x250 ~ 600x500
    plan = plan_generations(products, sizes)
    assert plan.without_buckets == 3 * 4
    for pid, gens in plan.generations.items():
        assert len(gens) == len(set(gens))
        own = {plan.assignments[(pid, get_placement(s).name)] for s in sizes}
        assert set(gens) == own
    assert plan.generations[0] == plan.generations[1]
    assert plan.assignments[(0, "medium-rectangle")] == plan.assignments[(0, "600x500")]
    assert plan.with_buckets == sum(len(g) for g in plan.generations.values()) <= 9
    assert plan.saving == pytest.approx(1 - plan.with_buckets / 12)
    assert plan.reduction == pytest.approx(12 / plan.with_buckets)
    with pytest.raises(StagingError):
        plan_generations(products, [])


def test_plan_merge_only_within_the_growth_bound():
    products = {"a": (400, 600), "b": (900, 300)}
    exact = plan_generations(products, STANDARD_SIZES)
    merged = plan_generations(products, STANDARD_SIZES, merge=1.5)
    assert merged.with_buckets <= exact.with_buckets
    for key, own in exact.assignments.items():
        host = merged.assignments[key]
        assert host.covers(own)
        assert canvas_area(host) <= 1.5 * canvas_area(own) * (1 + 1e-9)
        assert host in merged.generations[key[0]]
    # a crop from the covering generation still lands the product right
    host = merged.assignments[("a", "square")]
    canvas = bucket_canvas(host, (200, 300))
    crop = crop_for_placement(_generation(canvas), canvas, "square", (400, 600))
    blue = (crop[..., 2] > 200) & (crop[..., 0] < 60)
    found = _bbox(blue)
    want = layout((400, 600), "square").box
    assert max(abs(a - b) for a, b in zip(found, want, strict=True)) <= 1


# -- cache ----------------------------------------------------------------------------------


def test_cache_keys_and_product_hash():
    rgb, alpha = _product()
    h = product_hash(rgb, alpha)
    a8 = np.rint(alpha * 255).astype(np.uint8)
    assert h == product_hash(rgb.copy(), a8)  # the alpha as saved to a PNG: same key
    assert h == product_hash(rgb, a8.astype(np.float32) / 255)
    assert product_hash(rgb, alpha > 0.5) == product_hash(rgb, (alpha > 0.5).astype(np.uint8) * 255)
    other = rgb.copy()
    other[0, 0, 0] ^= 1
    assert product_hash(other, alpha) != h
    assert product_hash(rgb) != h
    b = Bucket(2, 4, 2, 4, 1.2)
    k = GenerationCache.key(h, "a living room", b, 7, "sd15", steps=20, cfg=7.5)
    assert k == GenerationCache.key(h, "a living room", b, 7, "sd15", cfg=7.5, steps=20)
    assert k == GenerationCache.key(
        h, "a living room", (2, 4, 2, 4, 1.2), 7, "sd15", cfg=7.5, steps=20
    )
    for changed in (
        GenerationCache.key(h, "a kitchen", b, 7, "sd15", steps=20, cfg=7.5),
        GenerationCache.key(
            h, "a living room", Bucket(2, 4, 2, 5, 1.2), 7, "sd15", steps=20, cfg=7.5
        ),
        GenerationCache.key(h, "a living room", b, 8, "sd15", steps=20, cfg=7.5),
        GenerationCache.key(h, "a living room", b, 7, "sdxl", steps=20, cfg=7.5),
        GenerationCache.key(h, "a living room", b, 7, "sd15", steps=30, cfg=7.5),
    ):
        assert changed != k
    assert len(k) == 64


def test_cache_hits_misses_and_persistence(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    key = GenerationCache.key("p", "prompt", None, 1, "m")
    with GenerationCache(tmp_path / "cache") as cache:
        assert cache.get(key) is None and (cache.hits, cache.misses) == (0, 1)
        assert key not in cache and len(cache) == 0
        cache.put(key, img, {"prompt": "prompt", "bucket": Bucket(1, 2, 3, 4, 1.2)})
        assert np.array_equal(cache.get(key), img)
        assert (cache.hits, cache.misses) == (1, 1)
        assert cache.stats()["hit_rate"] == pytest.approx(0.5)
    with GenerationCache(tmp_path / "cache") as reopened:  # persistent across processes/opens
        assert key in reopened and len(reopened) == 1
        assert np.array_equal(reopened.get(key), img)
        meta = reopened.meta(key)
        assert meta["prompt"] == "prompt" and (meta["width"], meta["height"]) == (64, 48)
        assert meta["bucket"]["right"] == 2
        assert list(reopened.keys()) == [key]
    with pytest.raises(StagingError, match="cache key"):
        GenerationCache(tmp_path / "cache").get("../../etc/passwd")


def test_cache_is_atomic_and_heals(tmp_path, monkeypatch):
    from PIL import Image

    cache = GenerationCache(tmp_path / "c")
    img = np.full((16, 16, 3), 7, np.uint8)
    key = GenerationCache.key("p", "x", None, 0, "m")

    def crash(self, fh, *args, **kwargs):
        fh.write(b"\x89PNG half a file")
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.put(key, img, {})
    monkeypatch.undo()
    assert key not in cache and cache.get(key) is None
    assert not [p for p in (tmp_path / "c" / "images").rglob("*") if p.is_file()]

    cache.put(key, img, {})
    files = [p for p in (tmp_path / "c" / "images").rglob("*") if p.is_file()]
    assert len(files) == 1 and not files[0].name.startswith(".")
    files[0].write_bytes(b"garbage")  # damaged on disk: a miss, and the row goes
    assert cache.get(key) is None and key not in cache
    cache.put(key, img, {})
    files[0].unlink()  # deleted on disk: a miss as well
    assert cache.get(key) is None and len(cache) == 0
    cache.close()


def test_cache_thread_safety_and_single_generation(tmp_path):
    cache = GenerationCache(tmp_path / "c")
    key = GenerationCache.key("p", "x", None, 0, "m")
    calls = []
    gate = threading.Barrier(8)

    def generate():
        calls.append(1)
        return np.full((8, 8, 3), 3, np.uint8)

    results = []

    def worker(i):
        gate.wait()
        results.append(cache.get_or_generate(key, generate, {"i": i}))
        other = GenerationCache.key("p", "x", None, i + 1, "m")
        cache.put(other, np.full((8, 8, 3), i, np.uint8), {})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 8
    assert all(np.array_equal(r, results[0]) for r in results)
    assert len(cache) == 9
    cache.close()


# -- bench ----------------------------------------------------------------------------------


def test_bench_buckets_numbers_are_consistent():
    report = bench_buckets(products=40, variants=3, duplicate_products=10)
    assert report["sizes"] == 10
    assert report["generations_without_buckets"] == 40 * 10
    assert 40 <= report["generations_with_buckets"] <= 400
    assert report["saving"] == pytest.approx(1 - report["generations_with_buckets"] / 400)
    assert report["buckets_per_product"] == pytest.approx(report["generations_with_buckets"] / 40)
    assert 0 < report["crop_share_min"] <= report["crop_share_mean"] <= 1
    merged = report["merged"]
    assert merged["with_buckets"] <= report["generations_with_buckets"]
    dup = report["near_duplicates"]
    assert dup["sizes"] == 10 * 4 and dup["without_buckets"] == 10 * 40
    assert dup["with_buckets"] <= dup["without_buckets"]
    # coarser bins, fewer generations
    coarse = bench_buckets(products=40, variants=0, r=2.0)
    assert coarse["generations_with_buckets"] <= report["generations_with_buckets"]
    assert "near_duplicates" not in coarse


def test_cli_bench_buckets():
    result = CliRunner().invoke(
        app, ["bench", "buckets", "--products", "12", "--variants", "1", "--r", "1.5", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["products"] == 12 and report["r"] == 1.5
    assert report["generations_without_buckets"] == 120
    text = CliRunner().invoke(
        app, ["bench", "buckets", "--products", "5", "--sizes", "300x250,4:5", "--variants", "0"]
    )
    assert text.exit_code == 0, text.output
    assert "generations_with_buckets" in text.output
    assert math.isfinite(report["saving"])
