"""The ``isnet`` backends: both files' normalisations, the fp16 -> fp32 graph, the edge
refinement on a synthetic scene with known alpha, and the real fp16 file when it is here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_segment_onnx import make_u2net_like, square_image

from staging.evaluate.metrics import segmentation_metrics
from staging.models import ModelStore
from staging.runtime import Runtime
from staging.segment import create_segmenter
from staging.segment.isnet import (
    INPUT_SIZE,
    IsNetSegmenter,
    band_for,
    fp32_graph,
    refine_edges,
    trimap_from,
    upsample_crop,
    with_margin,
)

SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
OFFICIAL = SHARED_MODELS.parent / "data" / "u2net-official"


class _Session:
    """Records what the network was fed; answers with a fixed map."""

    def __init__(self, answer: np.ndarray, output: str = "output"):
        self.answer, self.output, self.fed = answer, output, None

    def get_inputs(self):
        return [type("I", (), {"name": "input", "shape": [1, 3, 1024, 1024]})()]

    def get_outputs(self):
        names = [self.output, "side1", "side2"]
        return [type("O", (), {"name": n})() for n in names]

    def run(self, names, feeds):
        assert names == [self.output]  # only the main output, never the side outputs
        self.fed = feeds["input"]
        return [self.answer[None, None]]


@pytest.mark.parametrize(
    ("normalization", "black", "white", "grey"),
    [("dis", -0.5, 0.5, 128 / 255 - 0.5), ("imgly", -0.5, 127 / 256, 0.0)],
)
def test_each_file_gets_its_own_normalisation(normalization, black, white, grey):
    image = np.zeros((40, 30, 3), np.uint8)
    image[:, 10:20] = 128
    image[:, 20:] = 255
    session = _Session(np.full((INPUT_SIZE, INPUT_SIZE), 0.7, np.float32))
    IsNetSegmenter(session, "x", normalization).predict(image)
    x = session.fed
    assert x.shape == (1, 3, INPUT_SIZE, INPUT_SIZE) and x.dtype == np.float32
    assert x[0, :, 500, 10] == pytest.approx([black] * 3, abs=1e-6)
    assert x[0, :, 500, 512] == pytest.approx([grey] * 3, abs=1e-6)
    assert x[0, :, 500, 1010] == pytest.approx([white] * 3, abs=1e-6)


def test_fp16_output_is_used_as_alpha_and_fp32_output_is_min_max_normalised():
    answer = np.full((INPUT_SIZE, INPUT_SIZE), 0.2, np.float32)
    answer[300:700, 300:700] = 0.6
    image = np.zeros((64, 64, 3), np.uint8)
    as_is = IsNetSegmenter(_Session(answer), "x", "imgly").predict(image)
    assert as_is.min() == pytest.approx(0.2) and as_is.max() == pytest.approx(0.6)
    stretched = IsNetSegmenter(_Session(answer), "x", "dis").predict(image)
    assert stretched.min() == pytest.approx(0.0) and stretched.max() == pytest.approx(1.0)


def test_registered_isnet_runs_our_backend_on_a_tiny_model(tmp_path):
    # A brightness detector with IS-Net's file name: the registry routes it to IsNetSegmenter.
    make_u2net_like(tmp_path / "isnet-general-use.onnx", size=None)
    segmenter = create_segmenter("isnet-general-use", Runtime(ModelStore([tmp_path]), threads=1))
    assert isinstance(segmenter, IsNetSegmenter) and segmenter.name == "isnet-general-use"
    image, truth = square_image(120, 90, (30, 90, 20, 70))
    prob = segmenter.predict(image)
    assert prob.shape == (120, 90) and prob.dtype == np.float32
    assert ((prob >= 0.5) == truth).mean() > 0.97


def _fp16_model(path: Path) -> Path:
    """A tiny graph in the fp16 file's style: fp16 weights, Casts around fp32 work."""
    weight = np.array([[[[0.5]], [[0.25]], [[0.25]]]], np.float16)
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w"], ["y16"]),
        helper.make_node("Sigmoid", ["y16"], ["s16"]),
        helper.make_node("Cast", ["s16"], ["output"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_fp16",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 8, 8])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_fp32_graph_has_no_fp16_left_and_the_same_output(tmp_path):
    path = _fp16_model(tmp_path / "tiny16.onnx")
    converted = onnx.load_from_string(fp32_graph(path))
    assert all(t.data_type != TensorProto.FLOAT16 for t in converted.graph.initializer)
    casts = [n for n in converted.graph.node if n.op_type == "Cast"]
    assert all(a.i == TensorProto.FLOAT for n in casts for a in n.attribute if a.name == "to")
    x = np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32)
    original = ort.InferenceSession(str(path)).run(["output"], {"input": x})[0]
    fast = ort.InferenceSession(fp32_graph(path)).run(["output"], {"input": x})[0]
    assert np.abs(original - fast).max() < 2e-3  # fp16 rounding of the original only


def _scene_with_known_alpha(h: int = 1536, w: int = 2048):
    """A textured room-like backdrop and a disc with a 1-px soft rim, at full resolution."""
    rng = np.random.default_rng(1)
    backdrop = cv2.resize(rng.integers(40, 120, (24, 32, 3)).astype(np.uint8), (w, h))
    backdrop = np.clip(backdrop + rng.normal(0, 3, backdrop.shape), 0, 255)
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(yy - h / 2, xx - w / 2) - 0.3 * h
    radius += 6 * np.sin(np.arctan2(yy - h / 2, xx - w / 2) * 40)  # a fine serrated outline
    alpha = np.clip(0.5 - radius, 0, 1).astype(np.float32)
    product = np.array([230, 200, 60], np.float32)
    image = alpha[..., None] * product + (1 - alpha[..., None]) * backdrop
    return np.round(image).astype(np.uint8), alpha


def test_refinement_recovers_the_edges_the_upsampling_blurred():
    image, alpha = _scene_with_known_alpha()
    h, w = alpha.shape
    # The net's best possible answer at its resolution: the true alpha seen at 1024 px.
    net = cv2.resize(alpha, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    upsampled = cv2.resize(net, (w, h), interpolation=cv2.INTER_LINEAR)
    band = band_for(image.shape)
    assert band == 3
    refined = refine_edges(image, upsampled, band)
    unknown = trimap_from(upsampled, band) == 0.5
    assert np.array_equal(refined[~unknown], upsampled[~unknown])  # only the band changes
    # Measured: the band's mean alpha error falls from 0.089 to 0.003.
    error_before = np.abs(upsampled - alpha)[unknown].mean()
    assert np.abs(refined - alpha)[unknown].mean() < 0.2 * error_before
    before, after = segmentation_metrics(upsampled, alpha), segmentation_metrics(refined, alpha)
    assert after["iou"] >= before["iou"]


def test_refinement_runs_only_for_photos_larger_than_the_net_input(monkeypatch):
    import staging.segment.isnet as isnet

    calls = []
    monkeypatch.setattr(isnet, "refine_edges", lambda img, p, b: calls.append(b) or p)
    answer = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    segmenter = IsNetSegmenter(_Session(answer), "x", "imgly", refine="cf", pad=0.0)
    segmenter.predict(np.zeros((1024, 700, 3), np.uint8))
    assert calls == []
    segmenter.predict(np.zeros((1500, 700, 3), np.uint8))
    assert calls == [3]
    IsNetSegmenter(_Session(answer), "x", "imgly", refine="none").predict(
        np.zeros((1500, 700, 3), np.uint8)
    )
    assert calls == [3]
    # With the margin a plain 1024 px shot is seen at 1536 px: its map is upsampled too.
    IsNetSegmenter(_Session(answer), "x", "imgly", refine="cf", pad=0.25).predict(
        np.zeros((1024, 700, 3), np.uint8)
    )
    assert calls == [3, 3]


@pytest.mark.shared_data
@pytest.mark.skipif(
    not (SHARED_MODELS / "isnet-general-fp16.onnx").is_file()
    or not (OFFICIAL / "u2net_results").is_dir(),
    reason="the real IS-Net fp16 file or the official U^2-Net photos are absent",
)
def test_real_isnet_fp16_through_the_engine():
    from staging import StagingEngine
    from staging.io import load_image, load_mask

    engine = StagingEngine(models_dir=str(SHARED_MODELS), device="cpu", threads=2)
    assert engine.pretrained_segmenter_name() == "isnet-general-fp16"
    ious = []
    for stem in ("bike", "boat"):
        photo = OFFICIAL / "test_images" / f"{stem}.jpg"
        seg = engine.segment(photo)  # auto
        assert seg.backend == "isnet-general-fp16"
        reference = load_mask(OFFICIAL / "u2net_results" / f"{stem}.png") >= 0.5
        ious.append(segmentation_metrics(seg.prob, reference)["iou"])
        assert seg.prob.shape == load_image(photo).shape[:2]
    # The README measured IoU 0.94 against the authors' U^2-Net maps over all 18 photos.
    assert min(ious) > 0.85, ious


class _RedDetector(_Session):
    """Answers 1 where the fed image is red (low green), like a net that found the product."""

    def __init__(self):
        super().__init__(np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32))

    def run(self, names, feeds):
        self.fed = feeds["input"]
        return [(self.fed[0, 1] < 0).astype(np.float32)[None, None]]


def _red_box_on_white(h=300, w=240):
    image = np.full((h, w, 3), 250, np.uint8)
    truth = np.zeros((h, w), bool)
    truth[20 : h - 20, 10 : w - 10] = True  # nearly frame-filling
    image[truth] = (220, 30, 40)
    return image, truth


def test_a_plain_backdrop_is_extended_and_the_map_is_cropped_back():
    image, truth = _red_box_on_white()
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


def test_no_margin_around_a_scene(monkeypatch):
    import staging.segment.isnet as isnet

    monkeypatch.setattr(isnet, "classify_staged", lambda img: type("V", (), {"staged": True})())
    image, truth = _red_box_on_white()
    session = _RedDetector()
    IsNetSegmenter(session, "x", "imgly", refine="none", pad=0.25).predict(image)
    assert np.isclose((session.fed[0, 1] < 0).mean(), truth.mean(), atol=0.02)


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


def test_bench_segment_times_isnet_against_a_plain_onnxruntime_session(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from staging.cli import app

    make_u2net_like(tmp_path / "isnet-general-use.onnx", size=None)
    monkeypatch.setenv("STAGING_MODELS_DIR", str(tmp_path))
    args = ["bench", "segment", "--backends", "catalog,isnet-general-use", "--sizes", "96"]
    result = CliRunner().invoke(app, [*args, "--repeat", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    isnet = report["isnet-general-use"]
    assert isnet["96px_ms"] > 0 and isnet["96px_plain_onnxruntime_ms"] > 0
    assert isnet["96px_net_speedup"] == pytest.approx(
        isnet["96px_plain_onnxruntime_ms"] / isnet["96px_net_ms"]
    )
    assert set(report["catalog"]) == {"96px_ms"}
