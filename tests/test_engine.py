"""The engine: settings precedence, lazy thread-safe model cache, device choice, auto backend."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import staging.engine as engine_module
from staging import Segmentation, Settings, StagingEngine
from staging.errors import ImageLoadError, ModelNotAvailableError, UnknownNameError
from staging.segment.base import Segmenter


class _CountingSegmenter(Segmenter):
    name = "counting"
    builds = 0

    def __init__(self):
        type(self).builds += 1
        time.sleep(0.05)  # a slow load makes races visible

    def predict(self, image):
        return (image.mean(axis=2) < 128).astype(np.float32)


def test_creating_an_engine_loads_nothing():
    engine = StagingEngine(device="cpu")
    assert engine.loaded_models() == []


def test_settings_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("STAGING_DEVICE", "cpu")
    monkeypatch.setenv("STAGING_THRESHOLD", "0.3")
    assert StagingEngine().settings.threshold == pytest.approx(0.3)
    assert StagingEngine(threshold=0.7).settings.threshold == pytest.approx(0.7)
    assert StagingEngine(Settings(threshold=0.6), device="cpu").settings.threshold == 0.6
    with pytest.raises(ValueError):
        StagingEngine(device="tpu")


def test_device_auto_falls_back_to_cpu_here():
    assert StagingEngine().device in {"cpu", "cuda", "mps"}
    assert StagingEngine(device="cpu").device == "cpu"


def test_models_load_once_across_threads(monkeypatch):
    _CountingSegmenter.builds = 0
    monkeypatch.setattr(engine_module, "create_segmenter", lambda name, rt: _CountingSegmenter())
    engine = StagingEngine(device="cpu")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(engine.segmenter("counting")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _CountingSegmenter.builds == 1
    assert len({id(r) for r in results}) == 1
    assert engine.loaded_models() == ["segment:counting"]


def test_segment_result_contract(monkeypatch, studio_shot):
    monkeypatch.setattr(engine_module, "create_segmenter", lambda name, rt: _CountingSegmenter())
    image, truth = studio_shot
    seg = StagingEngine(device="cpu").segment(image, backend="counting")
    assert isinstance(seg, Segmentation)
    assert seg.backend == "counting"
    assert seg.prob.dtype == np.float32 and seg.prob.shape == image.shape[:2]
    assert seg.mask.dtype == bool and (seg.mask == truth).all()
    cutout = seg.cutout
    assert cutout.mode == "RGBA" and cutout.size == (image.shape[1], image.shape[0])
    rgba = np.asarray(cutout)
    assert (rgba[..., 3][truth] == 255).all() and (rgba[..., 3][~truth] == 0).all()
    assert (rgba[..., :3][truth] == image[truth]).all()  # solid pixels exactly as shot


def test_auto_uses_catalog_without_weights(studio_shot):
    engine = StagingEngine(device="cpu")
    assert engine.pretrained_segmenter_name() is None
    assert engine.resolve_segment_backend(studio_shot[0]) == "catalog"


def test_auto_prefers_pretrained_for_scenes(monkeypatch, tmp_path, studio_shot):
    (tmp_path / "u2netp.onnx").write_bytes(b"not loaded here")
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    assert engine.pretrained_segmenter_name() == "u2netp"
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    monkeypatch.setattr(engine_module, "classify_staged", lambda img: _Verdict(True))
    assert engine.resolve_segment_backend(scene) == "u2netp"
    monkeypatch.setattr(engine_module, "classify_staged", lambda img: _Verdict(False))
    # Studio shots: catalog + U^2-Net-p chosen per image, the best on studio shots.
    assert engine.resolve_segment_backend(studio_shot[0]) == "hybrid"
    assert engine.resolve_segment_backend(studio_shot[0], "u2net") == "u2net"
    (tmp_path / "u2netp.onnx").unlink()
    (tmp_path / "u2net.onnx").write_bytes(b"not loaded here")
    bare = StagingEngine(device="cpu", models_dir=str(tmp_path))
    assert bare.resolve_segment_backend(studio_shot[0]) == "catalog"  # hybrid needs u2netp


class _Verdict:
    def __init__(self, staged):
        self.staged = staged


def test_missing_weights_error_names_the_pull_command(tmp_path, studio_shot):
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="staging models pull u2net"):
        engine.segment(studio_shot[0], backend="u2net")


def test_unknown_backend_and_bad_image():
    engine = StagingEngine(device="cpu")
    with pytest.raises(UnknownNameError, match="catalog"):
        engine.segment(np.zeros((8, 8, 3), np.uint8), backend="nope")
    with pytest.raises(ImageLoadError):
        engine.segment(b"definitely not an image")


def test_max_pixels_setting_applies(studio_shot):
    engine = StagingEngine(device="cpu", max_pixels=1000)
    with pytest.raises(ImageLoadError, match="megapixel|limit"):
        engine.segment(studio_shot[0], backend="catalog")


def test_embed_is_unit_norm_and_cached(studio_shot):
    image, truth = studio_shot
    engine = StagingEngine(device="cpu")
    vector = engine.embed(image)
    assert vector.dtype == np.float32 and vector.ndim == 1
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    again = engine.embed(image, mask=truth)
    assert float(vector @ again) > 0.95  # segment() finds the same product as the true mask
    assert "embed:handcrafted" in engine.loaded_models()
    assert engine.embedder() is engine.embedder("handcrafted")
    with pytest.raises(UnknownNameError):
        engine.embed(image, embedder="nope", mask=truth)


def test_inpaint_keeps_pixels_outside_the_hole(studio_shot):
    image, truth = studio_shot
    engine = StagingEngine(device="cpu")
    filled = engine.inpaint(image, truth)
    assert filled.shape == image.shape and filled.dtype == np.uint8
    assert (filled[~truth] == image[~truth]).all()
    assert np.abs(filled[truth].astype(int) - 245).mean() < 10  # backdrop colour fills it
    assert "inpaint:structure" in engine.loaded_models()
