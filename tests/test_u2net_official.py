"""Our U^2-Net code reproduces the authors' published U^2-Net-p outputs (real weights and data).

Needs ../shared/models/u2netp.onnx and ../shared/data/u2net-official (the authors' 18 test images
and their u2netp_results); skipped when they are absent. Files are read in place, never copied.
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
MODEL = SHARED / "models" / "u2netp.onnx"
DATA = SHARED / "data" / "u2net-official"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not MODEL.is_file(), reason=f"real U^2-Net-p weights not found at {MODEL}"),
    pytest.mark.skipif(
        not (DATA / "test_images").is_dir() or not (DATA / "u2netp_results").is_dir(),
        reason=f"official U^2-Net test images/results not found under {DATA}",
    ),
]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def test_u2netp_reproduces_official_results():
    runtime = Runtime(ModelStore([MODEL.parent]))
    seg = U2NetSegmenter(runtime.onnx_session(MODEL), name="u2netp")
    assert seg.size == 320
    images = sorted(
        p for p in (DATA / "test_images").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    assert len(images) == 18
    ious, maes = [], []
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"))
        ref = np.asarray(Image.open(DATA / "u2netp_results" / f"{path.stem}.png").convert("L"))
        prob = seg.predict(image)
        assert prob.shape == ref.shape and prob.dtype == np.float32
        ious.append(_iou(prob >= 0.5, ref > 127))
        maes.append(float(np.abs(prob - ref.astype(np.float32) / 255.0).mean()))
    mean_iou, mae = float(np.mean(ious)), float(np.mean(maes))
    worst = images[int(np.argmin(ious))].name
    print(
        f"\nu2netp vs official u2netp_results ({len(images)} images): mean IoU {mean_iou:.4f}, "
        f"min IoU {min(ious):.4f} ({worst}), mean abs diff of prob maps {mae:.4f}"
    )
    assert mean_iou >= 0.98, f"mean IoU {mean_iou:.4f} < 0.98 (worst {worst}: {min(ious):.4f})"
    assert min(ious) >= 0.95
    assert mae <= 0.01
