"""U^2-Net family (u2net, u2netp, custom U^2-Net-style ONNX files) on ONNX Runtime, our own code.

Pre/post-processing follows the authors' test script (xuebinqin/U-2-Net ``u2net_test.py``):
bilinear resize to SxS *without* antialiasing (skimage ``transform.resize``, ``order=1``), divide by
the image max, ImageNet mean/std, NCHW; take the fused map ``d0``, min-max normalise it and resize
it back with PIL bilinear.

Why not rembg's pre-processing: rembg resizes with LANCZOS. Against the authors' published
u2netp outputs on their 18 test images, an antialiasing resize (LANCZOS, PIL BILINEAR, cv2
INTER_AREA) departs from them, while a bilinear resize without antialiasing reproduces them
(measured: BENCHMARKS.md, U²-Net-p reproduces the authors' published outputs), so we use cv2
INTER_LINEAR on float32 (same result as skimage, faster, no extra dependency).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from staging.errors import ModelNotAvailableError, StagingError
from staging.segment.base import Segmenter

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
DEFAULT_SIZE = 320


def _static_hw(shape) -> tuple[int, int] | None:
    """(H, W) from an NCHW ONNX input shape when both are fixed positive ints, else None."""
    if shape is None or len(shape) != 4:
        return None
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    return None


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Tolerate grey (HxW / HxWx1) and RGBA inputs; everything else must be HxWx3."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise StagingError(
            f"Expected an RGB image of shape (H, W, 3), got an array of shape {image.shape}."
        )
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[..., :3]
    return image


class U2NetSegmenter(Segmenter):
    """A U^2-Net-style ONNX saliency model: input 1x3xSxS, first output a sigmoid map.

    Args:
        session: an ``onnxruntime.InferenceSession`` (see :meth:`staging.runtime.Runtime.
            onnx_session`). ``run`` is thread-safe, and :meth:`predict` keeps no state, so one
            segmenter can serve several threads.
        name: the backend name reported in results.
        size: the input side S; default: the model's static input size, else 320.
    """

    max_side = None  # any photo size: the map is enlarged to the photo, as the authors do

    def __init__(self, session, name: str = "u2netp", size: int | None = None):
        self.session = session
        self.name = name
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if not inputs or not outputs:
            raise StagingError(f"The ONNX model for {name!r} has no inputs or no outputs.")
        model_input = inputs[0]
        shape = model_input.shape
        if shape is not None and len(shape) == 4 and isinstance(shape[1], int) and shape[1] != 3:
            raise StagingError(
                f"The ONNX model for {name!r} is not a U^2-Net-style model: its input "
                f"{model_input.name!r} has shape {shape}, expected [1, 3, S, S] (RGB)."
            )
        self.input_name = model_input.name
        self.output_name = outputs[0].name  # d0, the fused map
        if size is not None:
            self.input_hw = (int(size), int(size))
        else:
            self.input_hw = _static_hw(shape) or (DEFAULT_SIZE, DEFAULT_SIZE)

    @property
    def size(self) -> int:
        """The input side S (the height, for a model with a non-square static input)."""
        return self.input_hw[0]

    @classmethod
    def from_file(cls, path: str | Path, runtime) -> U2NetSegmenter:
        """A custom local U^2-Net-style ONNX file; ``name`` is ``file:<basename>``."""
        path = Path(path).expanduser()
        if not path.is_file():
            what = "is a directory, not an ONNX file" if path.is_dir() else "does not exist"
            raise ModelNotAvailableError(
                f"Custom segmentation model {str(path)!r} {what}. Give the path of a "
                "U^2-Net-style .onnx file (input 1x3xSxS RGB, first output a sigmoid saliency "
                "map), or use a registered backend such as 'u2netp'."
            )
        return cls(runtime.onnx_session(path), name=f"file:{path.name}")

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> the model's NCHW float32 input."""
        h, w = self.input_hw
        x = cv2.resize(image.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        x /= max(float(x.max()), 1e-6)
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = _as_rgb(image)
        height, width = image.shape[:2]
        out = self.session.run([self.output_name], {self.input_name: self.preprocess(image)})[0]
        pred = np.asarray(out, dtype=np.float32).reshape(out.shape[-2:])
        lo, hi = float(pred.min()), float(pred.max())
        # A flat map carries no ranking: keep the model's own (sigmoid) value then.
        pred = (pred - lo) / (hi - lo) if hi - lo > 1e-8 else np.clip(pred, 0.0, 1.0)
        # PIL bilinear, as the authors save their maps (antialiased when shrinking tiny inputs).
        prob = np.asarray(Image.fromarray(pred).resize((width, height), Image.BILINEAR))
        return np.clip(prob, 0.0, 1.0).astype(np.float32, copy=False)
