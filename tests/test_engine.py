"""The engine: settings precedence, lazy thread-safe model cache, device choice, auto backend."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import staging.engine as engine_module
import staging.segment.choose as choose_module
from staging import Segmentation, Settings, StagingEngine
from staging.errors import ImageLoadError, ModelNotAvailableError, UnknownNameError
from staging.segment import BACKENDS
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
    assert engine.resolve_segment_backend(studio_shot[0]) == "backdrop"


def test_auto_ranks_the_pretrained_models_on_disk(tmp_path, studio_shot):
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    # Worst to best: each new file on disk takes over, for shots and scenes alike.
    for name in ("u2netp", "u2net", "birefnet-general-lite", "isnet-general-use"):
        (tmp_path / f"{name}.onnx").write_bytes(b"not loaded here")
        assert engine.pretrained_segmenter_name() == name
        assert engine.resolve_segment_backend(studio_shot[0]) == name
        assert engine.auto_segment_backend(staged=True) == name
    (tmp_path / "isnet-general-fp16.onnx").write_bytes(b"not loaded here")
    assert engine.resolve_segment_backend(studio_shot[0]) == "isnet-general-fp16"
    assert engine.resolve_segment_backend(studio_shot[0], "u2net") == "u2net"  # named: kept


def test_without_weights_a_scene_fails_naming_the_pull_and_a_shot_uses_catalog(
    monkeypatch, studio_shot
):
    engine = StagingEngine(device="cpu")
    scene = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    monkeypatch.setattr(choose_module, "classify_staged", lambda img: _Verdict(True))
    with pytest.raises(ModelNotAvailableError) as info:
        engine.segment(scene)
    assert "staging models pull isnet-general-fp16" in str(info.value)
    assert "88 MB" in str(info.value)
    monkeypatch.setattr(choose_module, "classify_staged", lambda img: _Verdict(False))
    assert engine.segment(studio_shot[0]).backend == "backdrop"
    assert "staging models pull isnet-general-fp16" in engine.segmentation_status()


def _fake_pulls(monkeypatch, failure: str | None = None) -> list[str]:
    """First-use fetching on, with ModelStore.pull recorded (writing a file, or failing)."""
    monkeypatch.setenv("STAGING_AUTO_PULL", "1")
    pulled: list[str] = []

    def pull(self, name, force=False, progress=True):
        pulled.append(name)
        if failure is not None:
            raise ModelNotAvailableError(failure)
        (self.dirs[0] / f"{name}.onnx").write_bytes(b"pulled")
        return self.dirs[0] / f"{name}.onnx"

    monkeypatch.setattr(engine_module.ModelStore, "pull", pull)
    return pulled


def test_first_use_pulls_the_recommended_model_unless_offline(monkeypatch, tmp_path, studio_shot):
    pulled = _fake_pulls(monkeypatch)
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "fresh"))
    (tmp_path / "fresh").mkdir()
    assert "fetched on first use" in engine.segmentation_status()
    assert engine.resolve_segment_backend(studio_shot[0]) == "isnet-general-fp16"
    assert pulled == ["isnet-general-fp16"]
    assert engine.resolve_segment_backend(studio_shot[0]) == "isnet-general-fp16"
    assert pulled == ["isnet-general-fp16"]  # once

    monkeypatch.setenv("STAGING_OFFLINE", "1")
    offline = StagingEngine(device="cpu", models_dir=str(tmp_path / "offline"))
    assert offline.resolve_segment_backend(studio_shot[0]) == "backdrop"
    assert pulled == ["isnet-general-fp16"]
    assert "offline mode is on" in offline.segmentation_status()


def test_a_failed_first_pull_warns_once_and_falls_back(monkeypatch, tmp_path, studio_shot):
    tries = _fake_pulls(monkeypatch, failure="no network")
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="no network"):
        assert engine.resolve_segment_backend(studio_shot[0]) == "backdrop"
    assert engine.resolve_segment_backend(studio_shot[0]) == "backdrop"
    assert tries == ["isnet-general-fp16"]  # not again on every image
    assert "fetching it failed" in engine.segmentation_status()


def test_masks_are_cached_by_content_and_model(monkeypatch, tmp_path, studio_shot):
    _CountingSegmenter.builds = 0
    calls = []

    class Recording(_CountingSegmenter):
        def predict(self, image):
            calls.append(image.shape)
            return super().predict(image)

    monkeypatch.setitem(BACKENDS, "rec", lambda runtime: Recording())
    image = studio_shot[0]
    first = StagingEngine(device="cpu", cache_dir=tmp_path / "cache").segment(image, "rec")
    again = StagingEngine(device="cpu", cache_dir=tmp_path / "cache").segment(image.copy(), "rec")
    assert len(calls) == 1  # another engine, another array, the same pixels: no second run
    assert np.abs(again.prob - first.prob).max() <= 1 / 65535
    changed = image.copy()
    changed[0, 0] = 0
    StagingEngine(device="cpu", cache_dir=tmp_path / "cache").segment(changed, "rec")
    assert len(calls) == 2
    monkeypatch.setattr(Recording, "cache_tag", "2")  # the model now answers differently
    StagingEngine(device="cpu", cache_dir=tmp_path / "cache").segment(image, "rec")
    assert len(calls) == 3


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


def test_cutout_edges_carry_the_product_colour_not_the_backdrop():
    """Soft edge pixels mix red product and white backdrop; the cutout's colour there is the
    product's (pymatting's foreground estimate), so it shows no white halo on a dark page."""
    h = w = 160
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((50 - np.hypot(yy - 80, xx - 80)) / 6 + 0.5, 0, 1).astype(np.float32)
    red, white = np.array([200, 20, 30], np.float32), np.array([250, 250, 250], np.float32)
    image = np.round(alpha[..., None] * red + (1 - alpha[..., None]) * white).astype(np.uint8)
    seg = Segmentation(image=image, prob=alpha, backend="test")
    edge = (alpha > 0.15) & (alpha < 0.85)
    assert image[edge][:, 1].mean() > 100  # the photo's edge is pinkish-white ...
    assert seg.foreground[edge][:, 1].mean() < 45  # ... the cutout's edge is red
    solid = alpha >= 0.999
    assert np.array_equal(seg.foreground[solid], image[solid])  # solid pixels as shot


def test_a_single_pixel_photo_segments_and_cuts_out():
    seg = StagingEngine(device="cpu").segment(np.full((1, 1, 3), 200, np.uint8))
    assert seg.prob.shape == (1, 1) and seg.cutout.size == (1, 1)


def test_a_big_photo_is_segmented_at_the_working_size_and_cut_out_at_its_own(monkeypatch, tmp_path):
    """The network sees a copy no longer than WORKING_SIDE; the maps and the cut-out come back
    at the photo's own size, its solid pixels as shot, and the cache serves the second ask."""
    from staging.segment.base import WORKING_SIDE

    seen = []

    class Recording(_CountingSegmenter):
        def predict(self, image):
            seen.append(image.shape[:2])
            return super().predict(image)

    monkeypatch.setitem(BACKENDS, "rec", lambda runtime: Recording())
    h, w = WORKING_SIDE + 900, WORKING_SIDE // 2
    yy, xx = np.mgrid[:h, :w]
    dark = (abs(yy - h / 2) < h / 3) & (abs(xx - w / 2) < w / 3)  # a dark box on white
    photo = np.where(dark[..., None], np.uint8(30), np.uint8(240)).repeat(3, axis=2)
    photo[dark] += (xx[dark] % 7).astype(np.uint8)[:, None]  # texture the cut-out must keep
    engine = StagingEngine(device="cpu", cache_dir=tmp_path)
    seg = engine.segment(photo, "rec")
    assert seen == [(WORKING_SIDE, round(w * WORKING_SIDE / h))]
    assert seg.prob.shape == seg.mask.shape == (h, w) and seg.cutout.size == (w, h)
    assert (seg.mask == dark).mean() > 0.999
    cut = np.asarray(seg.cutout)
    solid = seg.alpha >= 0.999
    assert solid.sum() > 0.9 * dark.sum() and np.array_equal(cut[solid][:, :3], photo[solid])
    engine.segment(photo, "rec")
    assert len(seen) == 1
    small = photo[: WORKING_SIDE // 2]  # a photo within the working size is segmented whole
    engine.segment(small, "rec")
    assert seen[-1] == small.shape[:2]


def test_a_backend_without_a_size_bound_sees_the_whole_photo(monkeypatch, tmp_path):
    """A fixed-input net (IS-Net, U^2-Net) bounds its own costly steps: it gets the photo
    itself, as a plain session would, and its maps are cached under their own key."""
    from staging.segment.base import WORKING_SIDE

    seen = []

    class Unbounded(_CountingSegmenter):
        max_side = None

        def predict(self, image):
            seen.append(image.shape[:2])
            return super().predict(image)

    monkeypatch.setitem(BACKENDS, "whole", lambda runtime: Unbounded())
    photo = np.full((WORKING_SIDE + 500, 600, 3), 240, np.uint8)
    photo[400:-400, 200:400] = 30
    engine = StagingEngine(device="cpu", cache_dir=tmp_path)
    seg = engine.segment(photo, "whole")
    assert seen == [photo.shape[:2]] and seg.prob.shape == photo.shape[:2]
    engine.segment(photo, "whole")
    assert len(seen) == 1


def test_the_foreground_of_a_big_photo_is_estimated_at_the_working_size():
    """Edge colours from the bounded-size estimate are the full-size estimate's, within a few
    levels, and still the product's colour rather than the backdrop's."""
    from staging.segment.base import estimate_foreground

    h = w = 480
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((150 - np.hypot(yy - 240, xx - 240)) / 12 + 0.5, 0, 1).astype(np.float32)
    red, white = np.array([200, 20, 30], np.float32), np.array([250, 250, 250], np.float32)
    image = np.round(alpha[..., None] * red + (1 - alpha[..., None]) * white).astype(np.uint8)
    full = estimate_foreground(image, alpha, max_side=h)
    bounded = estimate_foreground(image, alpha, max_side=h // 3)
    edge = (alpha > 0.15) & (alpha < 0.85)
    assert bounded[edge][:, 1].mean() < 45  # red, as the full-size estimate's
    assert np.abs(bounded[edge].astype(int) - full[edge]).mean() < 4
    solid = alpha >= 0.999
    assert np.array_equal(bounded[solid], image[solid])


def test_alpha_keeps_soft_probability_within_two_percent_of_the_mask_only():
    """A saliency net's faint probability away from the product is no part of the cut-out;
    a soft edge beside the mask is (radius: 2% of the photo's long side, here 10 px)."""
    prob = np.zeros((300, 500), np.float32)
    prob[100:200, 100:200] = 0.9  # the product
    prob[150, 209] = 0.3  # 10 px right of the mask's last column (199): within reach
    prob[150, 211] = 0.3  # 12 px away: beyond it
    prob[20, 400] = 0.3  # far away
    alpha = Segmentation(image=np.zeros((300, 500, 3), np.uint8), prob=prob, backend="t").alpha
    assert alpha[150, 209] == pytest.approx(0.3) and alpha[150, 211] == 0 and alpha[20, 400] == 0
    assert alpha[150, 150] == pytest.approx(0.9)
