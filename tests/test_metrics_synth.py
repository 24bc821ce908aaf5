"""Segmentation metrics on known cases and the synthetic studio-shot composer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from staging.evaluate.metrics import boundary_tolerance, segmentation_metrics
from staging.evaluate.synth import BACKGROUNDS, KINDS, compose_catalog_shot, procedural_object


def _disc(size=128, centre=(64, 64), r=30) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    cv2.circle(m, centre, r, 1, -1)
    return m.astype(bool)


# ----------------------------------------------------------------------------- metrics


def test_identical_masks_are_perfect():
    gt = _disc()
    m = segmentation_metrics(gt.astype(np.float32), gt)
    assert m == {"iou": 1.0, "mae": 0.0, "fbeta": 1.0, "boundary_f": 1.0}


def test_disjoint_masks_score_zero():
    a = np.zeros((100, 100), bool)
    b = np.zeros((100, 100), bool)
    a[:, :40] = True
    b[:, 60:] = True
    m = segmentation_metrics(a.astype(np.float32), b)
    assert m["iou"] == 0.0 and m["fbeta"] == 0.0 and m["boundary_f"] == 0.0
    assert m["mae"] == pytest.approx(0.8)


def test_one_pixel_shift_keeps_boundary_f():
    gt = _disc(256, (128, 128), 60)
    shifted = np.roll(gt, 1, axis=1)
    assert boundary_tolerance(gt.shape) == round(0.008 * np.hypot(256, 256))
    m = segmentation_metrics(shifted.astype(np.float32), gt)
    assert m["boundary_f"] == 1.0
    assert 0.95 < m["iou"] < 1.0


def test_far_shift_lowers_boundary_f():
    gt = _disc(256, (128, 128), 60)
    m = segmentation_metrics(np.roll(gt, 30, axis=1).astype(np.float32), gt)
    assert m["boundary_f"] < 0.5


def test_half_overlap_iou_and_fbeta():
    gt = np.zeros((64, 64), bool)
    pred = np.zeros((64, 64), bool)
    gt[:, :32] = True  # 2048 px
    pred[:, 16:48] = True  # 2048 px, 1024 shared
    m = segmentation_metrics(pred.astype(np.float32), gt)
    assert m["iou"] == pytest.approx(1024 / 3072)
    assert m["fbeta"] == pytest.approx(0.5)  # precision = recall = 0.5


def test_empty_gt_and_empty_pred():
    z = np.zeros((32, 32), np.float32)
    m = segmentation_metrics(z, z.astype(bool))
    assert m["iou"] == 1.0 and m["fbeta"] == 1.0 and m["boundary_f"] == 1.0 and m["mae"] == 0
    ones = np.ones((32, 32), np.float32)
    assert segmentation_metrics(ones, z.astype(bool))["iou"] == 0.0


def test_soft_inputs_threshold_and_uint8_gt():
    gt = _disc()
    prob = np.where(gt, 0.6, 0.2).astype(np.float32)
    m = segmentation_metrics(prob, (gt * 255).astype(np.uint8))
    assert m["iou"] == 1.0
    assert m["mae"] == pytest.approx(0.4 * gt.mean() + 0.2 * (1 - gt.mean()), rel=1e-5)
    assert segmentation_metrics(prob, gt, threshold=0.7)["iou"] == 0.0


# ----------------------------------------------------------------------------- composition


@pytest.fixture(scope="module")
def chair():
    return procedural_object("chair", np.random.default_rng(1), size=256)


def test_composition_alpha_is_the_placed_object(chair):
    rgb, alpha = chair
    info: dict = {}
    style = {
        "background": "pastel",
        "shadow": "contact+cast",
        "noise": 0,
        "jpeg": 0,
        "scale": 0.5,
        "center": (128, 128),
    }
    image, gt = compose_catalog_shot(
        rgb, alpha, np.random.default_rng(0), size=256, style=style, info=info
    )
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert gt.dtype == np.float32 and gt.shape == (256, 256)
    # Scale 0.5 of a 256 frame: the object's (cropped) box is resized to 128 on its long side.
    ys, xs = np.nonzero(alpha > 0)
    crop = alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    nw, nh = round(w * 128 / max(h, w)), round(h * 128 / max(h, w))
    expected = np.clip(cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA), 0, 1)
    expected[expected < 1 / 512] = 0
    x0, y0 = round(128 - nw / 2), round(128 - nh / 2)
    placed = np.zeros_like(gt)
    placed[y0 : y0 + nh, x0 : x0 + nw] = expected
    np.testing.assert_array_equal(gt, placed)
    # The image is exactly alpha*F + (1-alpha)*B: where alpha is 0 it shows the background.
    bg = info["background_rgb"]
    outside = gt == 0
    assert np.abs(image[outside].astype(np.float32) - bg[outside]).max() <= 0.5 + 1e-3


def test_shadow_is_multiplicative_and_behind_the_object(chair):
    rgb, alpha = chair
    base = {"background": "pastel", "noise": 0, "jpeg": 0, "scale": 0.6, "center": (128, 140)}
    info_a: dict = {}
    info_b: dict = {}
    img_a, gt_a = compose_catalog_shot(
        rgb, alpha, np.random.default_rng(5), 256, {**base, "shadow": "none"}, info_a
    )
    img_b, gt_b = compose_catalog_shot(
        rgb, alpha, np.random.default_rng(5), 256, {**base, "shadow": "contact+cast"}, info_b
    )
    np.testing.assert_array_equal(gt_a, gt_b)  # shadows are not product
    solid = gt_a >= 1.0
    # Inside the solid object the shadow changes nothing.
    np.testing.assert_array_equal(img_a[solid], img_b[solid])
    # Outside, it only darkens, by a factor (ratio) close to the same for all channels.
    outside = gt_a == 0
    a = img_a[outside].astype(np.float32)
    b = img_b[outside].astype(np.float32)
    assert (b <= a + 0.5).all()
    darkened = (a - b).max(axis=1) > 20
    assert darkened.sum() > 50
    ratio = b[darkened] / a[darkened]
    assert np.abs(ratio - ratio.mean(axis=1, keepdims=True)).max() < 0.1


def test_composition_is_deterministic(chair):
    rgb, alpha = chair
    for style in (None, *BACKGROUNDS):
        a = compose_catalog_shot(rgb, alpha, np.random.default_rng(42), 192, style)
        b = compose_catalog_shot(rgb, alpha, np.random.default_rng(42), 192, style)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        ys, xs = np.nonzero(a[1] > 0.5)
        side = max(np.ptp(ys), np.ptp(xs)) + 1
        assert 0.4 * 192 <= side <= 0.86 * 192


def test_jpeg_bytes_decode_to_the_image(chair):
    rgb, alpha = chair
    info: dict = {}
    image, _ = compose_catalog_shot(rgb, alpha, np.random.default_rng(3), 128, {"jpeg": 85}, info)
    decoded = cv2.imdecode(np.frombuffer(info["jpeg_bytes"], np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[..., ::-1], image)


def _holes(alpha: np.ndarray) -> int:
    """Background components enclosed by the object (not connected to the frame)."""
    bg = np.pad((alpha < 0.5).astype(np.uint8), 1, constant_values=1)
    n, _ = cv2.connectedComponents(bg, connectivity=4)
    return n - 2  # minus the label 0 and the outer background


@pytest.mark.parametrize("kind", KINDS)
def test_procedural_objects_are_sane(kind):
    rgb, alpha = procedural_object(kind, np.random.default_rng(7), size=192)
    assert rgb.shape == (192, 192, 3) and rgb.dtype == np.uint8
    assert alpha.shape == (192, 192) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    area = (alpha > 0.5).mean() if kind != "glass" else (alpha > 0.2).mean()
    assert 0.03 < area < 0.8
    soft = ((alpha > 0.05) & (alpha < 0.95)).sum()
    assert soft > 0  # anti-aliased edges
    assert alpha[0].max() == 0 and alpha[-1].max() == 0  # whole object inside the canvas
    if kind in ("chair", "ring"):
        assert _holes(alpha) >= 1
    if kind == "glass":
        inside = alpha[alpha > 0.05]
        assert 0.25 < np.median(inside) < 0.75
    np.testing.assert_array_equal(
        alpha, procedural_object(kind, np.random.default_rng(7), size=192)[1]
    )
