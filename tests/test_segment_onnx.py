"""U^2-Net ONNX backend and rembg sessions, on tiny ONNX models built here.

The tiny model has U^2-Net's interface (input ``input.1`` 1x3x320x320, outputs ``d0``..``d6``
1x1x320x320 after a sigmoid) and computes ``d0 = sigmoid(k * (brightness - 0.5))`` with a fixed
1x1 convolution that undoes the ImageNet normalisation, so a bright square on a dark page must
come back as a mask of that square.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError
from staging.models import ModelStore
from staging.runtime import Runtime
from staging.segment import create_segmenter
from staging.segment.u2net import IMAGENET_MEAN, IMAGENET_STD, U2NetSegmenter

onnx = pytest.importorskip("onnx")
from tests.helpers.images import square_image  # noqa: E402
from tests.helpers.models import make_u2net_like  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def check_prob(prob: np.ndarray, shape: tuple[int, int]) -> None:
    assert prob.shape == shape
    assert prob.dtype == np.float32
    assert np.isfinite(prob).all()
    assert prob.min() >= 0.0 and prob.max() <= 1.0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    make_u2net_like(root / "u2netp.onnx")
    return root


@pytest.fixture(scope="module")
def runtime(model_dir) -> Runtime:
    return Runtime(ModelStore([model_dir]), device="cpu", threads=1)


@pytest.fixture(scope="module")
def seg(model_dir, runtime) -> U2NetSegmenter:
    return U2NetSegmenter(runtime.onnx_session(model_dir / "u2netp.onnx"), name="u2netp")


# --- our U^2-Net code ---------------------------------------------------------------------------
def test_input_size_from_static_shape(seg):
    assert seg.size == 320 and seg.input_hw == (320, 320)
    assert seg.input_name == "input.1" and seg.output_name == "d0"
    assert seg.name == "u2netp"


def test_preprocess_matches_the_authors_normalisation(seg):
    image = np.zeros((10, 10, 3), np.uint8)
    image[..., 0] = 200  # max 200: red channel becomes 1.0, the others 0.0
    x = seg.preprocess(image)
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32
    expected = (np.array([1.0, 0.0, 0.0]) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x[0, :, 5, 5], expected, rtol=1e-5)


def test_square_mask(seg):
    image, truth = square_image(240, 240, (60, 180, 60, 180))
    prob = seg.predict(image)
    check_prob(prob, (240, 240))
    assert iou(prob >= 0.5, truth) > 0.9
    assert prob[truth].mean() > 0.9 and prob[~truth].mean() < 0.1


@pytest.mark.parametrize(
    ("h", "w", "box"),
    [
        (200, 500, (50, 150, 300, 450)),  # wide
        (640, 300, (100, 500, 40, 260)),  # tall, larger than the model input
        (33, 17, (8, 25, 4, 13)),  # tiny, odd sizes
    ],
)
def test_non_square_and_tiny_images(seg, h, w, box):
    image, truth = square_image(h, w, box)
    prob = seg.predict(image)
    check_prob(prob, (h, w))
    assert iou(prob >= 0.5, truth) > 0.9


def test_single_pixel_and_flat_images(seg):
    check_prob(seg.predict(np.full((1, 1, 3), 128, np.uint8)), (1, 1))
    for value in (0, 255):  # a flat map (and an all-black image: max 0) must not give NaN
        check_prob(seg.predict(np.full((50, 70, 3), value, np.uint8)), (50, 70))


def test_grayscale_derived_inputs(seg):
    rgb, truth = square_image(120, 160, (30, 90, 40, 120))
    grey = rgb.mean(axis=2).astype(np.uint8)
    stacked = np.repeat(grey[..., None], 3, axis=2)
    p_stacked = seg.predict(stacked)
    check_prob(p_stacked, (120, 160))
    assert iou(p_stacked >= 0.5, truth) > 0.9
    np.testing.assert_allclose(seg.predict(grey), p_stacked)  # HxW is taken as grey
    rgba = np.dstack([rgb, np.full(grey.shape, 255, np.uint8)])
    np.testing.assert_allclose(seg.predict(rgba), seg.predict(rgb))  # alpha ignored
    with pytest.raises(StagingError):
        seg.predict(np.zeros((4, 4, 2), np.uint8))


def test_predict_is_thread_safe(seg):
    images = [square_image(100 + 7 * i, 150, (20, 80, 30, 120))[0] for i in range(8)]
    expected = [seg.predict(im) for im in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(seg.predict, images * 3))
    for i, prob in enumerate(got):
        np.testing.assert_array_equal(prob, expected[i % len(images)])


def test_dynamic_input_defaults_to_320_and_size_override(tmp_path, runtime):
    path = make_u2net_like(tmp_path / "dyn.onnx", size=None)
    session = runtime.onnx_session(path)
    assert U2NetSegmenter(session).input_hw == (320, 320)
    small = U2NetSegmenter(session, size=160)
    assert small.preprocess(np.zeros((9, 9, 3), np.uint8)).shape == (1, 3, 160, 160)
    image, truth = square_image(200, 300, (40, 160, 60, 240))
    assert iou(small.predict(image) >= 0.5, truth) > 0.9


def test_from_file(model_dir, runtime):
    custom = U2NetSegmenter.from_file(model_dir / "u2netp.onnx", runtime)
    assert custom.name == "file:u2netp.onnx"
    image, truth = square_image(100, 100, (20, 80, 20, 80))
    assert iou(custom.predict(image) >= 0.5, truth) > 0.9


def test_from_file_missing_path_is_a_clear_error(tmp_path, runtime):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelNotAvailableError, match="does not exist") as info:
        U2NetSegmenter.from_file(missing, runtime)
    assert "nope.onnx" in str(info.value)
    with pytest.raises(ModelNotAvailableError, match="directory"):
        U2NetSegmenter.from_file(tmp_path, runtime)
    # and through the registry's ``<path>.onnx`` route
    with pytest.raises(ModelNotAvailableError):
        create_segmenter(str(missing), runtime)


def test_from_file_not_an_onnx_model(tmp_path, runtime):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(StagingError, match="Could not load"):
        U2NetSegmenter.from_file(bad, runtime)


# --- the registry -------------------------------------------------------------------------------
def test_registry_u2netp(model_dir, runtime):
    seg = create_segmenter("u2netp", runtime)
    assert isinstance(seg, U2NetSegmenter) and seg.name == "u2netp"
    image, truth = square_image(150, 200, (30, 120, 50, 150))
    assert iou(seg.predict(image) >= 0.5, truth) > 0.9
    by_path = create_segmenter(str(model_dir / "u2netp.onnx"), runtime)
    assert by_path.name == "file:u2netp.onnx"


def test_registry_missing_model(tmp_path):
    empty = Runtime(ModelStore([tmp_path]))
    with pytest.raises(ModelNotAvailableError) as info:
        create_segmenter("u2netp", empty)
    assert "staging models pull u2netp" in str(info.value)


# --- rembg sessions on our files ----------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any download attempt (pooch) or socket connection fails the test."""
    pooch = pytest.importorskip("pooch")
    calls: list = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(pooch, "retrieve", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "rembg-home"))
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg-home"))
    yield calls
    assert not calls
    assert not (tmp_path / "rembg-home").exists()


@pytest.fixture
def rembg_segmenter():
    pytest.importorskip("rembg")
    from staging.segment.rembg_session import RembgSegmenter

    return RembgSegmenter


def _agrees_with_ours(segmenter, ours: U2NetSegmenter) -> None:
    for h, w, box in [(240, 240, (60, 180, 60, 180)), (200, 500, (50, 150, 300, 450))]:
        image, truth = square_image(h, w, box)
        prob = segmenter.predict(image)
        check_prob(prob, (h, w))
        assert iou(prob >= 0.5, ours.predict(image) >= 0.5) > 0.95
        assert iou(prob >= 0.5, truth) > 0.9


def test_rembg_u2netp_session(no_network, rembg_segmenter, model_dir, runtime, seg):
    segmenter = rembg_segmenter("u2netp", model_dir / "u2netp.onnx", runtime)
    assert segmenter.name == "u2netp"
    assert type(segmenter.session).__mro__[1].__name__ == "U2netpSession"
    _agrees_with_ours(segmenter, seg)


def test_rembg_from_models_dir(no_network, rembg_segmenter, runtime, seg):
    segmenter = rembg_segmenter.from_models_dir("u2netp", runtime)
    assert segmenter.name == "rembg:u2netp"
    _agrees_with_ours(segmenter, seg)
    via_registry = create_segmenter("rembg:u2netp", runtime)
    assert isinstance(via_registry, rembg_segmenter) and via_registry.name == "rembg:u2netp"


def test_rembg_from_file_u2net_custom(no_network, rembg_segmenter, model_dir, runtime, seg):
    # model_dir is outside rembg's home: rembg's own u2net_custom would refuse it.
    segmenter = rembg_segmenter.from_file(model_dir / "u2netp.onnx", runtime)
    assert segmenter.session_name == "u2net_custom"
    assert segmenter.name == "rembg:u2net_custom:u2netp.onnx"
    _agrees_with_ours(segmenter, seg)
    with pytest.raises(ModelNotAvailableError):
        rembg_segmenter.from_file(model_dir / "missing.onnx", runtime)


def test_rembg_registered_backend_uses_registry_name(no_network, rembg_segmenter, tmp_path):
    # birefnet-general-lite runs at 1024x1024 with its own normalisation in rembg; the
    # dynamic-shape tiny model still finds the bright square.
    make_u2net_like(tmp_path / "birefnet-general-lite.onnx", size=None)
    rt = Runtime(ModelStore([tmp_path]), threads=1)
    segmenter = create_segmenter("birefnet-general-lite", rt)
    assert isinstance(segmenter, rembg_segmenter) and segmenter.name == "birefnet-general-lite"
    image, truth = square_image(120, 90, (30, 90, 20, 70))
    prob = segmenter.predict(image)
    check_prob(prob, (120, 90))
    assert iou(prob >= 0.5, truth) > 0.9


def test_rembg_missing_and_unknown_sessions(no_network, rembg_segmenter, tmp_path):
    rt = Runtime(ModelStore([tmp_path / "a", tmp_path / "b"]))
    with pytest.raises(ModelNotAvailableError) as info:
        rembg_segmenter.from_models_dir("isnet-anime", rt)
    message = str(info.value)
    assert "isnet-anime.onnx" in message and str(tmp_path / "a" / "isnet-anime.onnx") in message
    with pytest.raises(ModelNotAvailableError, match="staging models pull isnet-general-use"):
        create_segmenter("rembg:isnet-general-use", rt)
    with pytest.raises(ModelNotAvailableError, match="staging models pull birefnet-general"):
        create_segmenter("birefnet-general", rt)
    with pytest.raises(UnknownNameError, match="no such session"):
        rembg_segmenter.from_models_dir("not-a-session", rt)
    with pytest.raises(UnknownNameError, match="web service"):
        rembg_segmenter.from_models_dir("withoutbg", rt)
    with pytest.raises(UnknownNameError, match="not supported"):
        rembg_segmenter.from_models_dir("sam", rt)


def test_rembg_not_installed_message(monkeypatch, tmp_path):
    import sys

    from staging.segment import rembg_session

    monkeypatch.setitem(sys.modules, "rembg", None)
    monkeypatch.setitem(sys.modules, "rembg.sessions", None)
    make_u2net_like(tmp_path / "u2netp.onnx")
    with pytest.raises(StagingError, match="pip install rembg"):
        rembg_session.RembgSegmenter(
            "u2netp", tmp_path / "u2netp.onnx", Runtime(ModelStore([tmp_path]))
        )
