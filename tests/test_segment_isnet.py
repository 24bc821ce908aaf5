"""The ``isnet`` backends: both files' normalisations, the fp16 -> fp32 graph, the edge
refinement on a synthetic scene with known alpha, the real fp16 file when it is here, and the
comparison with the plain network (``bench segment``, ``eval segment --compare-plain``). The
margin around frame-filling products: test_segment_isnet_margin.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from staging.errors import StagingError
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
)
from tests.helpers.images import square_image
from tests.helpers.isnet import SHARED_MODELS
from tests.helpers.isnet import FixedMapSession as _Session
from tests.helpers.models import make_u2net_like

OFFICIAL = SHARED_MODELS.parent / "data" / "u2net-official"


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


@pytest.mark.parametrize("name", ["isnet-general-use", "u2net"])
def test_fixed_input_nets_see_a_big_photo_whole_through_the_engine(tmp_path, monkeypatch, name):
    """No shrink to the working size before the net: its map is enlarged to the photo as a
    plain session does (a shrink first cost thin parts IoU against the network alone)."""
    from staging import StagingEngine
    from staging.segment.base import WORKING_SIDE

    make_u2net_like(tmp_path / f"{name}.onnx", size=None if name.startswith("isnet") else 320)
    engine = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "cache", device="cpu")
    segmenter = engine.segmenter(name)
    seen = []
    original = type(segmenter).preprocess

    def recording(self, img):
        seen.append(img.shape)
        return original(self, img)

    monkeypatch.setattr(type(segmenter), "preprocess", recording)
    photo = np.full((WORKING_SIDE + 300, 500, 3), 240, np.uint8)
    photo[300:-300, 150:350] = 20
    seg = engine.segment(photo, name)
    assert seen and seen[0][:2] == photo.shape[:2] and seg.prob.shape == photo.shape[:2]


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


def test_refinement_keeps_parts_thinner_than_its_band():
    size = 2000  # band 3 px: a 3 px leg is all band
    image = np.full((size, size, 3), 235, np.uint8)
    truth = np.zeros((size, size), np.uint8)
    for x1 in (300, 700, 1300, 1700):
        cv2.line(image, (1000, 400), (x1, 1800), (50, 45, 40), 3)
        cv2.line(truth, (1000, 400), (x1, 1800), 1, 3)
    cv2.circle(image, (1000, 400), 120, (60, 40, 30), -1)  # a solid top the band can anchor on
    cv2.circle(truth, (1000, 400), 120, 1, -1)
    net = cv2.resize(
        truth.astype(np.float32), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA
    )
    upsampled = np.clip(cv2.resize(net, (size, size), interpolation=cv2.INTER_LINEAR), 0, 1)
    band = band_for(image.shape)
    legs = truth.astype(bool).copy()
    legs[:600] = False
    assert not (trimap_from(upsampled, band)[legs] == 0.5).any()  # no unknown on the legs
    refined = refine_edges(image, upsampled, band)
    before = segmentation_metrics(upsampled, truth > 0)["iou"]
    assert segmentation_metrics(refined, truth > 0)["iou"] >= before > 0.8


def test_refinement_of_a_photo_over_the_working_size_changes_only_its_band():
    """Above WORKING_SIDE the band is solved on a shrunk copy; every other pixel keeps the
    full-size map, so a 3 px leg at 3000 px is not thinned by a shrink (it was: -0.01 IoU)."""
    from staging.segment.base import WORKING_SIDE
    from staging.segment.isnet import refine_at_most

    size = 3000
    image = np.full((size, size, 3), 235, np.uint8)
    truth = np.zeros((size, size), np.uint8)
    for x1 in (450, 1050, 1950, 2550):
        cv2.line(image, (1500, 600), (x1, 2700), (50, 45, 40), 3)
        cv2.line(truth, (1500, 600), (x1, 2700), 1, 3)
    cv2.circle(image, (1500, 600), 180, (60, 40, 30), -1)
    cv2.circle(truth, (1500, 600), 180, 1, -1)
    net = cv2.resize(
        truth.astype(np.float32), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA
    )
    upsampled = np.clip(cv2.resize(net, (size, size), interpolation=cv2.INTER_LINEAR), 0, 1)
    refined = refine_at_most(image, upsampled, image.shape)
    assert refined.shape == upsampled.shape
    changed = refined != upsampled
    legs = truth.astype(bool).copy()
    legs[:900] = False
    assert changed.any() and not changed[legs].any()  # the top's outline only
    ys, xs = np.nonzero(changed)
    assert np.hypot(ys - 600, xs - 1500).max() < 180 + 4 * size / WORKING_SIDE * band_for(
        (WORKING_SIDE, WORKING_SIDE)
    )
    before = segmentation_metrics(upsampled, truth > 0)["iou"]
    assert segmentation_metrics(refined, truth > 0)["iou"] >= before


def test_a_diverged_matting_solve_keeps_the_net_map(monkeypatch):
    import pymatting

    image, alpha = _scene_with_known_alpha()
    upsampled = cv2.resize(
        cv2.resize(alpha, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA),
        alpha.shape[::-1],
        interpolation=cv2.INTER_LINEAR,
    )
    monkeypatch.setattr(pymatting, "estimate_alpha_cf", lambda img, tri: np.full(tri.shape, np.nan))
    refined = refine_edges(image, upsampled, band_for(image.shape))
    assert np.array_equal(refined, upsampled)


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
    from staging.evaluate.segmentation import plain_segmenter
    from staging.io import load_image, load_mask

    engine = StagingEngine(models_dir=str(SHARED_MODELS), device="cpu", threads=2)
    assert engine.pretrained_segmenter_name() == "isnet-general-fp16"
    plain = plain_segmenter(engine, "isnet-general-fp16")
    for stem in ("bike", "boat"):  # 3000 and 1280 px: the working size and the refinement act
        photo = OFFICIAL / "test_images" / f"{stem}.jpg"
        seg = engine.segment(photo)  # auto
        assert seg.backend == "isnet-general-fp16"
        assert seg.prob.shape == load_image(photo).shape[:2]
        # The authors' U^2-Net maps are a reference, not the truth (no bicycle spokes in them):
        # agreement with them measures that the network runs, not that its edges are right.
        reference = load_mask(OFFICIAL / "u2net_results" / f"{stem}.png") >= 0.5
        iou = segmentation_metrics(seg.prob, reference)["iou"]
        plain_iou = segmentation_metrics(plain.predict(load_image(photo)), reference)["iou"]
        assert iou > 0.8 and abs(iou - plain_iou) < 0.01, (stem, iou, plain_iou)


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
    assert isnet["96px_vs_plain"] == pytest.approx(
        isnet["96px_ms"] / isnet["96px_plain_onnxruntime_ms"]
    )
    assert set(report["catalog"]) == {"96px_ms"}


class _FixedSegmenter:
    """Answers a planted map per image (keyed by the image's first pixel)."""

    def __init__(self, answers: dict[int, np.ndarray]):
        self.answers = answers

    def predict(self, image):
        return self.answers[int(image[0, 0, 0])]


def test_compare_plain_reports_both_ious_and_where_ours_loses_most(tmp_path, monkeypatch):
    import staging.evaluate.segmentation as evaluation
    from staging.segment.base import Segmentation

    truth = np.zeros((40, 40), bool)
    truth[10:30, 10:30] = True
    near = truth.copy()
    near[10:12] = False  # IoU 0.9
    far = np.zeros_like(truth)
    far[10:30, 10:20] = True  # IoU 0.5
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for value in (1, 2, 3):
        image = np.full((40, 40, 3), value, np.uint8)
        cv2.imwrite(str(tmp_path / "images" / f"{value}.png"), image)
        cv2.imwrite(str(tmp_path / "masks" / f"{value}.png"), truth.astype(np.uint8) * 255)
    ours = _FixedSegmenter({1: truth, 2: far, 3: near})  # loses on 2, wins on 3
    plain = _FixedSegmenter({1: truth, 2: near, 3: far})

    class Engine:
        load_image = staticmethod(lambda path: cv2.imread(str(path))[..., ::-1].copy())

        def segment(self, rgb, backend=None):
            prob = ours.predict(rgb).astype(np.float32)
            return Segmentation(image=rgb, prob=prob, backend="isnet-general-fp16")

    monkeypatch.setattr(evaluation, "plain_segmenter", lambda engine, name: plain)
    report = evaluation.evaluate_segmentation(
        Engine(), tmp_path / "images", tmp_path / "masks", compare_plain=True
    )
    rows = {r["image"]: r for r in report["per_image"]}
    assert rows["2.png"]["iou"] == pytest.approx(0.5)
    assert rows["2.png"]["plain_iou"] == pytest.approx(0.9)
    assert report["plain_iou"] == pytest.approx(report["iou"])  # the same three IoUs, swapped
    assert (report["better_than_plain"], report["worse_than_plain"]) == (1, 1)
    assert list(report["worst_vs_plain"]) == ["2.png", "1.png", "3.png"]  # biggest loss first
    assert report["worst_vs_plain"]["2.png"] == "0.5000 vs plain 0.9000"


def test_plain_segmenter_is_the_file_alone_in_a_default_session(tmp_path):
    from staging import StagingEngine
    from staging.evaluate.segmentation import plain_segmenter

    make_u2net_like(tmp_path / "isnet-general-use.onnx", size=None)
    engine = StagingEngine(models_dir=str(tmp_path), device="cpu", cache_dir=str(tmp_path / "c"))
    plain = plain_segmenter(engine, "isnet-general-use")
    assert (plain.pad, plain.refine, plain.normalization) == (0.0, "none", "dis")
    assert plain.session is not engine.segmenter("isnet-general-use").session
    image, _ = square_image(1300, 1100, (300, 1000, 200, 900))  # above 1024: ours refines
    x = cv2.resize(image.astype(np.float32), (INPUT_SIZE, INPUT_SIZE)) / 255.0 - 0.5
    session = ort.InferenceSession(str(tmp_path / "isnet-general-use.onnx"))
    out = session.run(None, {"input.1": x.transpose(2, 0, 1)[None]})[0][0, 0]
    out = (out - out.min()) / (out.max() - out.min())
    expected = cv2.resize(out, (1100, 1300), interpolation=cv2.INTER_LINEAR)
    assert np.abs(plain.predict(image) - expected).max() < 1e-3
    with pytest.raises(StagingError, match="compare-plain"):
        plain_segmenter(engine, "catalog")


def test_eval_segment_compare_plain_from_the_command_line(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from staging.cli import app

    make_u2net_like(tmp_path / "models" / "isnet-general-use.onnx", size=None)
    monkeypatch.setenv("STAGING_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("STAGING_CACHE_DIR", str(tmp_path / "cache"))
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    image, truth = square_image(120, 100, (30, 90, 20, 80))
    cv2.imwrite(str(tmp_path / "images" / "box.png"), image[..., ::-1])
    cv2.imwrite(str(tmp_path / "masks" / "box.png"), truth.astype(np.uint8) * 255)
    args = ["eval", "segment", "--images", str(tmp_path / "images"), "--masks"]
    args += [str(tmp_path / "masks"), "--backend", "isnet-general-use", "--compare-plain"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["per_image"][0]["plain_iou"] == pytest.approx(report["iou"])  # nothing added
    assert list(report["worst_vs_plain"]) == ["box.png"]
