"""The ``isnet`` backend's margin: a product that fills the frame is seen again with its
backdrop extended and the map cropped back, only when the net is unsure, never around a
scene, and without costing thin parts their IoU; also the real fp16 file on such shots when
it is here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from staging.evaluate.metrics import segmentation_metrics
from staging.segment.isnet import INPUT_SIZE, IsNetSegmenter, upsample_crop, with_margin
from tests.helpers.isnet import SHARED_MODELS
from tests.helpers.isnet import FixedMapSession as _Session

IKEA = SHARED_MODELS.parent / "data" / "ikea" / "products"
needs_real_isnet = pytest.mark.skipif(
    not (SHARED_MODELS / "isnet-general-fp16.onnx").is_file(),
    reason="the real IS-Net fp16 file is absent (../shared/models)",
)


@pytest.fixture(scope="module")
def real_isnet():
    from staging import StagingEngine
    from staging.evaluate.segmentation import plain_segmenter

    engine = StagingEngine(models_dir=str(SHARED_MODELS), device="cpu", threads=2)
    return engine.segmenter("isnet-general-fp16"), plain_segmenter(engine, "isnet-general-fp16")


@pytest.mark.shared_data
@needs_real_isnet
@pytest.mark.skipif(not IKEA.is_dir(), reason="the IKEA dev photos are absent (../shared/data)")
def test_real_isnet_finds_a_frame_filling_pillow_only_with_the_margin(real_isnet):
    from staging.io import load_image

    ours, plain = real_isnet
    pillow = load_image(IKEA / "001.540.78.jpg")  # a white pillow shot almost edge to edge
    assert (plain.predict(pillow) >= 0.5).mean() < 0.1  # the plain net: next to nothing
    assert (ours.predict(pillow) >= 0.5).mean() > 0.7  # the pillow, with its backdrop extended


@pytest.mark.shared_data
@needs_real_isnet
def test_real_isnet_sees_a_thin_pole_as_the_plain_network_does(real_isnet):
    ours, plain = real_isnet
    image, truth = _pole_on_white()
    iou = segmentation_metrics(ours.predict(image), truth)["iou"]
    assert iou == pytest.approx(segmentation_metrics(plain.predict(image), truth)["iou"], abs=1e-4)


class _RedDetector(_Session):
    """Answers 1 where the fed image is red (low green), like a net that found the product, and
    0.5 everywhere when red covers most of what it sees, like a net that cannot tell a
    frame-filling product from its backdrop."""

    def __init__(self):
        super().__init__(np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32))

    def run(self, names, feeds):
        self.fed = feeds["input"]
        red = (self.fed[0, 1] < 0).astype(np.float32)
        return [(np.full_like(red, 0.5) if red.mean() > 0.5 else red)[None, None]]


def _red_box_on_white(h=300, w=240, inset=(20, 10)):
    image = np.full((h, w, 3), 250, np.uint8)
    truth = np.zeros((h, w), bool)
    truth[inset[0] : h - inset[0], inset[1] : w - inset[1]] = True
    image[truth] = (220, 30, 40)
    return image, truth


def test_a_frame_filling_product_gets_the_backdrop_extended_and_the_map_cropped_back():
    image, truth = _red_box_on_white()  # nearly frame-filling: the net is undecided
    session = _RedDetector()
    segmenter = IsNetSegmenter(session, "x", "imgly", refine="none", pad=0.25)
    prob = segmenter.predict(image)
    assert prob.shape == truth.shape
    assert ((prob >= 0.5) == truth).mean() > 0.98  # cropped back in place
    fed = session.fed[0]
    white = (250 - 128) / 256
    assert np.allclose(fed[:, :100, :], white, atol=1e-3)  # the margin: the backdrop extended
    red_share = (fed[1] < 0).mean()
    assert red_share < 0.5 * truth.mean()  # the product now sits on a page


def test_a_product_the_net_found_is_seen_without_a_margin():
    image, truth = _red_box_on_white(inset=(80, 70))  # backdrop all round: a clear answer
    session = _RedDetector()
    prob = IsNetSegmenter(session, "x", "imgly", refine="none", pad=0.25).predict(image)
    assert np.isclose((session.fed[0, 1] < 0).mean(), truth.mean(), atol=0.02)  # as it is
    assert ((prob >= 0.5) == truth).mean() > 0.99


def test_no_margin_around_a_scene_even_when_the_net_is_unsure(monkeypatch):
    import staging.segment.isnet as isnet

    monkeypatch.setattr(isnet, "classify_staged", lambda img: type("V", (), {"staged": True})())
    image, truth = _red_box_on_white()
    session = _RedDetector()
    IsNetSegmenter(session, "x", "imgly", refine="none", pad=0.25).predict(image)
    assert np.isclose((session.fed[0, 1] < 0).mean(), truth.mean(), atol=0.02)


class _DarkDetector(_Session):
    """A net that sees dark structures at least 3 of its input pixels wide: a part the margin
    shrinks below that is lost, as IS-Net loses thin parts in a shrunk input."""

    def __init__(self):
        super().__init__(np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32))

    def run(self, names, feeds):
        self.fed = feeds["input"]
        dark = (self.fed[0].mean(0) < -0.2).astype(np.uint8)
        seen = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        return [seen.astype(np.float32)[None, None]]


def _pole_on_white(size=1024, width=3):
    image = np.full((size, size, 3), 245, np.uint8)
    truth = np.zeros((size, size), bool)
    x = size // 2
    truth[size // 8 : size - size // 8, x : x + width] = True  # does not touch the frame
    image[truth] = 40
    return image, truth


def test_a_thin_pole_keeps_its_iou_with_the_margin_logic_in_place():
    image, truth = _pole_on_white()
    margined = IsNetSegmenter(_DarkDetector(), "x", "imgly", refine="none", pad=0.25)
    plain = IsNetSegmenter(_DarkDetector(), "x", "imgly", refine="none", pad=0.0)
    iou = segmentation_metrics(margined.predict(image), truth)["iou"]
    assert iou == pytest.approx(segmentation_metrics(plain.predict(image), truth)["iou"])
    assert iou > 0.9
    # What the margin would have done to it: the pole seen at two thirds of its width.
    framed = with_margin(image, 256)
    seen = _DarkDetector().run(None, {"input": margined.preprocess(framed)})[0][0, 0]
    lost = upsample_crop(seen, framed.shape, 256, image.shape)
    assert segmentation_metrics(lost, truth)["iou"] < 0.5


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("empty", True),  # found nothing
        ("half", True),  # undecided everywhere
        ("box", False),  # a clear object: undecided only across its outline
        ("line", False),  # a thin one: all outline, still clear
        ("soft box", False),  # an edge three pixels soft: most of its doubt is on the outline
        ("box+haze", True),  # a clear part in a large undecided area
    ],
)
def test_unsure_compares_the_undecided_pixels_with_the_outline(answer, expected):
    from staging.segment.isnet import unsure

    pred = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    if answer == "half":
        pred[:] = 0.5
    if answer in ("box", "box+haze"):
        pred[300:700, 300:600] = 1.0
        pred[299, 300:600] = pred[700, 300:600] = 0.5  # a soft edge
    if answer == "box+haze":
        pred[50:250, 50:950] = 0.4
    if answer == "soft box":
        pred[297:703, 297:603] = 0.3
        pred[298:702, 298:602] = 0.4
        pred[299:701, 299:601] = 0.6
        pred[300:700, 300:600] = 1.0
    if answer == "line":
        pred[100:900, 500:502] = 0.9
        pred[100:900, 499] = pred[100:900, 502] = 0.4
    assert unsure(pred) is expected


def test_with_margin_extends_the_border_without_a_step():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :, 0] = np.arange(20, dtype=np.uint8)[None] * 10  # a gradient sweep
    image[4:6, 8:12] = 255
    framed = with_margin(image, 3)
    assert framed.shape == (16, 26, 3) and np.array_equal(framed[3:13, 3:23], image)
    assert np.array_equal(framed[3:13, 0], image[:, 0]) and np.array_equal(
        framed[0, 3:23], image[0]
    )
    assert with_margin(image, 0) is image


@pytest.mark.parametrize(("framed", "margin"), [((1500, 1200), 150), ((700, 500), 0)])
def test_the_map_is_upsampled_for_the_photo_only_as_a_full_resize_would(framed, margin):
    pred = np.random.default_rng(0).random((INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    h, w = framed[0] - 2 * margin, framed[1] - 2 * margin
    full = cv2.resize(pred, framed[::-1], interpolation=cv2.INTER_LINEAR)
    expected = full[margin : margin + h, margin : margin + w]
    assert np.abs(upsample_crop(pred, framed, margin, (h, w)) - expected).max() < 1e-3


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("empty", True),  # found nothing: a second look
        ("filling haze", True),  # undecided over most of the frame
        ("mirror", False),  # undecided only inside a small object: a margin only shrinks it
        ("box", False),  # a clear answer
    ],
)
def test_needs_margin_only_when_the_doubt_spans_more_than_the_margin_leaves(answer, expected):
    from staging.segment.isnet import needs_margin

    pred = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    if answer == "filling haze":
        pred[40:980, 60:1000] = 0.45
        pred[400:600, 400:600] = 1.0
    if answer in ("mirror", "box"):
        pred[300:700, 400:600] = 1.0  # 0.39 of the frame's height: under two thirds
    if answer == "mirror":
        pred[320:680, 420:580] = 0.45  # the glass: undecided
    assert needs_margin(pred, 0.25) is expected
    if answer == "filling haze":  # a smaller margin leaves a product more of the frame
        pred[:] = 0.0
        pred[150:870, 150:870] = 0.45  # spans 0.70
        pred[400:600, 400:600] = 1.0
        assert needs_margin(pred, 0.25) and not needs_margin(pred, 0.1)
