"""What the ``isnet`` tests share: where the real weights would be, and a stand-in session.

Shared by test_segment_isnet.py and test_segment_isnet_margin.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


class FixedMapSession:
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
