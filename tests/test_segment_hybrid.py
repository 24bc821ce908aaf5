"""The ``hybrid`` backend: ``catalog`` and U^2-Net-p, one map (or their mean) chosen per image.

The real U^2-Net-p is replaced by a tiny ONNX model of the same interface (a brightness
detector, see test_segment_onnx.py); the selector's fitted constants are the real ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_segment_onnx import make_u2net_like

from staging import StagingEngine
from staging.segment.base import Segmenter
from staging.segment.hybrid import (
    _MEAN,
    _SCALE,
    _WEIGHTS,
    CHOICES,
    FEATURE_NAMES,
    HybridSegmenter,
    choose,
    combine,
    selector_features,
)


class _Fixed(Segmenter):
    def __init__(self, prob: np.ndarray, name: str):
        self.prob, self.name = prob, name

    def predict(self, image):
        return self.prob

    def background(self, image):
        return np.full((*image.shape[:2], 3), 250.0, np.float32)


def _maps():
    solid = np.zeros((80, 80), np.float32)
    solid[20:70, 25:55] = 1.0
    ring = solid.copy()
    ring[28:62, 32:48] = 0.0  # the catalog map lost a white interior
    image = np.full((80, 80, 3), 250, np.uint8)
    image[solid > 0] = (235, 235, 232)
    return image, ring, solid


def test_fitted_selector_has_one_weight_per_feature_and_choice():
    n = len(FEATURE_NAMES)
    assert _MEAN.shape == (n,) and _SCALE.shape == (n,) and (_SCALE > 0).all()
    assert _WEIGHTS.shape == (n + 1, len(CHOICES)) and np.abs(_WEIGHTS).sum() > 0


def test_features_describe_the_disagreement():
    image, ring, solid = _maps()
    f = dict(zip(FEATURE_NAMES, selector_features(image, ring, solid), strict=True))
    assert f["overlap"] == pytest.approx(ring.sum() / solid.sum())
    assert f["only_catalog"] == 0 and f["only_net"] > 0.3
    assert f["solidity_net"] == pytest.approx(1.0, abs=0.1) and f["solidity_catalog"] < 0.7
    assert f["white_in_catalog"] == 1.0 and f["parts_catalog"] == pytest.approx(0.1)


def test_predict_returns_the_chosen_map_and_says_which():
    image, ring, solid = _maps()
    hybrid = HybridSegmenter(_Fixed(ring, "catalog"), _Fixed(solid, "net"))
    prob = hybrid.predict(image)
    choice = choose(selector_features(image, ring, solid))
    assert hybrid.last_choice == CHOICES[choice]
    np.testing.assert_array_equal(prob, combine(choice, ring, solid))
    np.testing.assert_array_equal(combine(2, ring, solid), (ring + solid) / 2)
    assert hybrid.background(image)[0, 0, 0] == 250.0  # the catalog backdrop fit


def test_engine_runs_hybrid_on_registry_weights(tmp_path):
    make_u2net_like(tmp_path / "u2netp.onnx")
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    image = np.full((120, 160, 3), 20, np.uint8)
    image[30:100, 50:110] = (240, 230, 220)
    seg = engine.segment(image, backend="hybrid")
    assert seg.backend == "hybrid"
    catalog = engine.segment(image, backend="catalog").prob
    net = engine.segment(image, backend="u2netp").prob
    candidates = [combine(c, catalog, net) for c in range(len(CHOICES))]
    assert any(np.allclose(seg.prob, c, atol=1e-6) for c in candidates)
    truth = np.zeros((120, 160), bool)
    truth[30:100, 50:110] = True
    assert (seg.mask & truth).sum() / (seg.mask | truth).sum() > 0.9


def test_hybrid_without_u2netp_names_the_pull_command(tmp_path):
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    with pytest.raises(Exception, match="staging models pull u2netp"):
        engine.segment(np.zeros((32, 32, 3), np.uint8), backend="hybrid")
