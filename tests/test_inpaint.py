"""Inpainting backends (staging.inpaint) and their evaluation (staging.evaluate.inpaint)."""

from __future__ import annotations

import numpy as np
import pytest

from staging.errors import StagingError, UnknownNameError
from staging.evaluate.inpaint import (
    WBL_BOUNDARY,
    WBL_INTERIOR,
    boundary_weights,
    evaluate_inpainting,
    inpaint_metrics,
    make_hole,
    product_silhouette,
)
from staging.inpaint import BACKENDS, DEFAULT, create_inpainter
from staging.models import ModelStore
from staging.runtime import Runtime
from tests.helpers.images import textured_room as _textured_room
from tests.helpers.models import tiny_lama as _tiny_lama

WEIGHTS_FREE = ("structure", "telea", "ns")


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(ModelStore([tmp_path]), "cpu")


def _blob_hole(h: int = 96, w: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h * 0.55) / (h * 0.25)) ** 2 + ((xx - w * 0.55) / (w * 0.15)) ** 2 <= 1


# --------------------------------------------------------------------------- backends


def test_default_is_registered_and_weights_free(runtime):
    assert DEFAULT == "structure"
    assert set(WEIGHTS_FREE) <= set(BACKENDS)
    assert create_inpainter(DEFAULT, runtime).name == DEFAULT


@pytest.mark.parametrize("name", WEIGHTS_FREE)
def test_bit_exact_outside_hole(name, runtime):
    image = _textured_room()
    hole = _blob_hole()
    out = create_inpainter(name, runtime).inpaint(image, hole)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert out is not image
    # the input is never modified
    np.testing.assert_array_equal(image, _textured_room())


@pytest.mark.parametrize("name", WEIGHTS_FREE)
def test_hole_on_the_image_border(name, runtime):
    image = _textured_room()
    hole = np.zeros(image.shape[:2], bool)
    hole[:30, :20] = True  # touches two sides of the frame
    hole[-10:, 60:90] = True
    out = create_inpainter(name, runtime).inpaint(image, hole)
    np.testing.assert_array_equal(out[~hole], image[~hole])


@pytest.mark.parametrize("name", WEIGHTS_FREE)
def test_smooth_gradient_filled_with_low_error(name, runtime):
    h, w = 80, 120
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    image = np.dstack([40 + xx, 60 + 1.2 * yy, 200 - 0.5 * xx - 0.4 * yy]).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[25:55, 40:80] = True
    out = create_inpainter(name, runtime).inpaint(image, hole)
    err = np.abs(out[hole].astype(float) - image[hole].astype(float)).mean()
    limit = 3.0 if name == "structure" else 8.0
    assert err < limit, f"{name}: mean abs error {err:.2f}"


def test_structure_carries_a_horizontal_edge_across_the_hole(runtime):
    """A wall/floor junction crossing the hole stays sharp (the reason for the default)."""
    image = np.full((60, 100, 3), 220, np.uint8)
    image[30:] = 60
    hole = np.zeros((60, 100), bool)
    hole[10:50, 35:65] = True
    out = create_inpainter("structure", runtime).inpaint(image, hole)
    assert out[20, 50].min() > 200 and out[40, 50].max() < 80
    telea = create_inpainter("telea", runtime).inpaint(image, hole)
    ours = inpaint_metrics(out, image, hole)["hole_psnr"]
    assert ours > 24 and ours > inpaint_metrics(telea, image, hole)["hole_psnr"] + 3


def _panelled_wall_over_floor() -> tuple[np.ndarray, np.ndarray]:
    """Vertical panelling (6-px stripes) on a wall above a floor, a square hole across both."""
    yy, xx = np.mgrid[:80, :120]
    grey = np.where(yy < 45, 200, 70) + np.where((yy < 45) & ((xx // 6) % 2 == 0), 30, 0)
    image = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    hole = np.zeros((80, 120), bool)
    hole[15:65, 35:85] = True
    return image, hole


def test_structure_follows_two_orientations_at_once():
    """Vertical stripes entering from the top and a junction entering from the sides: the
    amplified coherence and the guided pass over the structure tensor keep both (harmonic
    tensor interpolation mixes them into an isotropic, blurring middle)."""
    from staging.inpaint.structure import StructureInpainter

    image, hole = _panelled_wall_over_floor()

    def psnr(**settings) -> float:
        out = StructureInpainter(**settings).inpaint(image, hole)
        return inpaint_metrics(out, image, hole)["hole_psnr"]

    default = psnr()
    assert default > 26
    assert default > psnr(passes=0) + 1.0  # the guided pass
    previous = dict(passes=0, gain=1.0, sigma=2.0, vertical=0.1, floor=0.01)
    assert default > psnr(**previous) + 5.0  # the settings before 2026-11


def test_structure_rejects_bad_settings():
    from staging.inpaint.structure import StructureInpainter

    for bad in (dict(vertical=0.0), dict(floor=0.0), dict(sigma=0.0), dict(gain=0.0)):
        with pytest.raises(ValueError):
            StructureInpainter(**bad)
    with pytest.raises(ValueError, match="passes"):
        StructureInpainter(passes=-1)


def test_structure_without_guided_pass_still_exact_outside(runtime):
    from staging.inpaint.structure import StructureInpainter

    image = _textured_room()
    hole = _blob_hole()
    out = StructureInpainter(passes=0).inpaint(image, hole)
    np.testing.assert_array_equal(out[~hole], image[~hole])


def test_empty_hole_returns_a_copy(runtime):
    image = _textured_room()
    for name in WEIGHTS_FREE:
        out = create_inpainter(name, runtime).inpaint(image, np.zeros(image.shape[:2], bool))
        np.testing.assert_array_equal(out, image)
        assert out is not image


def test_full_hole_is_a_clear_error(runtime):
    image = _textured_room()
    with pytest.raises(StagingError, match="whole image"):
        create_inpainter("structure", runtime).inpaint(image, np.ones(image.shape[:2], bool))


def test_mismatched_and_malformed_inputs(runtime):
    inp = create_inpainter("telea", runtime)
    image = _textured_room()
    with pytest.raises(StagingError, match="does not match"):
        inp.inpaint(image, np.zeros((10, 10), bool))
    with pytest.raises(StagingError, match="2-D"):
        inp.inpaint(image, np.zeros((*image.shape[:2], 3), bool))
    with pytest.raises(StagingError, match="uint8"):
        inp.inpaint(image.astype(np.float32), _blob_hole())
    with pytest.raises(StagingError, match="numpy"):
        inp.inpaint("room.jpg", _blob_hole())


def test_integer_and_float_holes_are_accepted(runtime):
    image = _textured_room()
    hole = _blob_hole()
    inp = create_inpainter("telea", runtime)
    expected = inp.inpaint(image, hole)
    for variant in (hole.astype(np.uint8) * 255, hole.astype(np.uint8), hole.astype(np.float32)):
        np.testing.assert_array_equal(inp.inpaint(image, variant), expected)


def test_unknown_backend_lists_the_names(runtime):
    with pytest.raises(UnknownNameError, match="structure"):
        create_inpainter("nope", runtime)


def test_sd_without_diffusers_or_weights_is_a_clear_error(runtime):
    with pytest.raises(StagingError, match="pip install|staging models pull"):
        create_inpainter("sd", runtime)


# --------------------------------------------------------------------------- LaMa (tiny ONNX)


@pytest.mark.parametrize("layout", ["image+mask", "rgbm"])
def test_lama_onnx_through_the_registry(tmp_path, layout):
    _tiny_lama(tmp_path / "lama_fp32.onnx", layout)
    runtime = Runtime(ModelStore([tmp_path]), "cpu")
    inp = create_inpainter("lama", runtime)
    assert inp.name == "lama" and inp.size == 512
    image = _textured_room(300, 400)
    hole = np.zeros((300, 400), bool)
    hole[100:200, 150:260] = True
    out = inp.inpaint(image, hole)
    np.testing.assert_array_equal(out[~hole], image[~hole])
    inner = out[110:190, 160:250].astype(float)
    assert abs(inner.mean() - 127.5) < 2 and inner.std() < 2


def test_lama_missing_weights_names_the_pull_command(runtime):
    from staging.errors import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError, match="staging models pull lama"):
        create_inpainter("lama", runtime)


def test_lama_rejects_a_model_with_another_signature(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "lama_fp32.onnx"))
    with pytest.raises(StagingError, match="Not a LaMa ONNX model"):
        create_inpainter("lama", Runtime(ModelStore([tmp_path]), "cpu"))


# --------------------------------------------------------------------------- metrics


def test_metrics_on_known_cases():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    hole = np.zeros((40, 50), bool)
    hole[10:30, 15:35] = True
    perfect = inpaint_metrics(truth, truth, hole)
    assert perfect["hole_psnr"] == 100.0 and perfect["wbl"] == 0.0
    assert perfect["hole_ssim"] == pytest.approx(1.0)
    # a constant error of 10 levels inside the hole: PSNR = 10 log10(255^2 / 100), L1 = 10/255
    pred = truth.astype(np.int16)
    pred[hole] = np.clip(pred[hole], 10, 255) - 10
    pred = pred.astype(np.uint8)
    diff = truth.astype(float) - pred.astype(float)
    mse = np.mean(diff[hole] ** 2)
    m = inpaint_metrics(pred, truth, hole)
    assert m["hole_psnr"] == pytest.approx(10 * np.log10(255**2 / mse))
    weights = boundary_weights(hole, band=3)
    expected_wbl = (weights * np.abs(diff).mean(axis=2)).sum() / weights.sum() / 255
    assert inpaint_metrics(pred, truth, hole, band=3)["wbl"] == pytest.approx(expected_wbl)
    assert m["hole_ssim"] < 1.0


def test_boundary_weights_are_the_papers():
    hole = np.zeros((50, 50), bool)
    hole[5:45, 5:45] = True
    w = boundary_weights(hole, band=4)
    assert w[~hole].max() == 0
    assert w[5, 20] == pytest.approx(WBL_BOUNDARY)  # on the edge
    assert w[25, 25] == pytest.approx(WBL_INTERIOR)  # deep inside
    np.testing.assert_allclose(np.unique(w[hole]), [WBL_INTERIOR, WBL_BOUNDARY], rtol=1e-6)


def test_silhouette_of_a_product_on_white():
    shot = np.full((100, 100, 3), 250, np.uint8)
    shot[20:80, 30:70] = (90, 60, 40)
    shot[40:50, 45:55] = 255  # white detail inside the product stays product
    sil = product_silhouette(shot)
    assert sil is not None and sil[20:80, 30:70].all() and sil.sum() == 60 * 40
    assert product_silhouette(np.full((100, 100, 3), 30, np.uint8)) is None  # not on white


def test_holes_are_deterministic_and_sized():
    sil = np.ones((60, 30), bool)
    a = make_hole((300, 512), [sil], np.random.default_rng(3))
    b = make_hole((300, 512), [sil], np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    rows = np.flatnonzero(a.any(axis=1))
    height = (rows[-1] - rows[0] + 1) / 300
    assert 0.19 <= height <= 0.41
    assert rows[-1] >= 0.7 * 300  # standing on the floor


class _FakeEngine:
    """What evaluate_inpainting needs from an engine (engine.inpaint)."""

    def __init__(self, runtime):
        self.runtime = runtime

    def inpaint(self, image, hole, backend=None):
        return create_inpainter(backend or DEFAULT, self.runtime).inpaint(image, hole)


def test_evaluate_inpainting_on_a_small_folder(tmp_path, runtime):
    from staging.io import load_image, save_image

    rooms = tmp_path / "rooms"
    for i in range(3):
        save_image(rooms / f"room{i}.png", _textured_room(150, 200, seed=i))
    report = evaluate_inpainting(_FakeEngine(runtime), rooms, backend="structure", width=128)
    assert report["backend"] == "structure" and report["images"] == 3
    for key in ("hole_psnr", "hole_ssim", "wbl", "seconds_per_image"):
        assert np.isfinite(report[key])
    assert report["reference"]["backend"] == "telea"
    assert report["reference"]["delta_hole_psnr"] == pytest.approx(
        report["hole_psnr"] - report["reference"]["hole_psnr"]
    )
    assert len(report["per_image"]) == 3
    again = evaluate_inpainting(_FakeEngine(runtime), rooms, backend="structure", width=128,
                                save_dir=tmp_path / "saved", reference=None)  # fmt: skip
    assert again["hole_psnr"] == report["hole_psnr"]  # same seed, same holes
    fills = sorted((tmp_path / "saved" / "structure").glob("*.png"))  # for `eval realism`
    assert [f.name for f in fills] == ["room0.png", "room1.png", "room2.png"]
    assert (tmp_path / "saved" / "room0.structure.jpg").is_file()  # the room beside its fill
    crop, truth = (load_image(tmp_path / "saved" / d / "room1.png")
                   for d in ("structure-hole", "truth-hole"))  # fmt: skip
    assert crop.shape == truth.shape and crop.shape[0] < 96 and not np.array_equal(crop, truth)


@pytest.mark.shared_data
def test_structure_beats_telea_on_ikea_rooms(runtime):
    from conftest import require_shared

    rooms = require_shared("data", "ikea", "rooms")
    report = evaluate_inpainting(
        _FakeEngine(runtime), rooms, backend="structure", limit=8, progress=False
    )
    assert report["reference"]["delta_hole_psnr"] > 0.5
