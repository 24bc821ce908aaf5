"""The staging methods take their mode's options as one value or as keywords naming its
fields, which override it (transformers' ``generate(generation_config, **kwargs)``)."""

from __future__ import annotations

import numpy as np
import pytest

from staging import StagingEngine
from staging.errors import StagingError
from staging.options import CopyPasteOptions, GenerationOptions, ParallaxOptions


@pytest.fixture
def lamp():
    rgb = np.full((64, 48, 3), 250, np.uint8)
    alpha = np.zeros((64, 48), np.float32)
    alpha[16:56, 12:36] = 1.0
    rgb[alpha > 0] = (180, 60, 40)
    return rgb, alpha


def test_keywords_and_an_options_value_stage_the_same(tmp_path, lamp):
    rgb, alpha = lamp
    engine = StagingEngine(device="cpu", cache_dir=str(tmp_path))
    by_keywords = engine.stage_vanilla(rgb, "lamp", mask=alpha, placement="80x100", num_images=2)
    options = GenerationOptions(mask=alpha, placement="80x100", num_images=2)
    by_value = engine.stage_vanilla(rgb, "lamp", options=options)
    assert [s.source["seed"] for s in by_keywords] == [s.source["seed"] for s in by_value] == [0, 1]
    for a, b in zip(by_keywords, by_value, strict=True):
        assert np.array_equal(a.image, b.image)
    # A keyword overrides the same field of the value; the value itself is left as it was.
    overridden = engine.stage_vanilla(rgb, "lamp", options=options, seed=7, num_images=1)
    assert [s.source["seed"] for s in overridden] == [7]
    assert options.seed == 0 and options.num_images == 2


def test_a_misspelt_option_or_a_wrong_value_is_a_readable_error(tmp_path, lamp):
    rgb, alpha = lamp
    engine = StagingEngine(device="cpu", cache_dir=str(tmp_path))
    with pytest.raises(TypeError, match="'seeed'.*GenerationOptions.*seed"):
        engine.stage_vanilla(rgb, "lamp", mask=alpha, seeed=3)
    with pytest.raises(TypeError, match="must be a GenerationOptions, got ParallaxOptions"):
        engine.stage_vanilla(rgb, "lamp", options=ParallaxOptions())
    with pytest.raises(TypeError, match="'shadw'"):
        engine.stage_copy_paste(rgb, index=tmp_path / "none", shadw=False)
    with pytest.raises(StagingError, match="k must be at least 1"):  # checked when overridden too
        CopyPasteOptions.build(CopyPasteOptions(k=2), {"k": 0})
