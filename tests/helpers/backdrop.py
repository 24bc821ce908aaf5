"""What the ``backdrop`` segmenter's tests share: the working size of their synthetic
shots, one segmenter per test module, and a colour offset no shadow can cause.

Shared by test_segment_backdrop.py and test_segment_backdrop_repair.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from staging.segment.backdrop import BackdropSegmenter

SIZE = 256


@pytest.fixture(scope="module", name="seg")
def seg_fixture() -> BackdropSegmenter:
    return BackdropSegmenter()


def warm_tint(backdrop: np.ndarray) -> np.ndarray:
    """A unit colour offset towards warm, orthogonal to ``backdrop`` (scaling the backdrop
    is what a shadow does; this is what it cannot do)."""
    warm = np.array([1.0, 0.0, -1.0], np.float32)
    warm -= (warm @ backdrop) / (backdrop @ backdrop) * backdrop
    return warm / np.linalg.norm(warm)
