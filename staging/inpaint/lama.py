"""``lama``: LaMa (Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier
Convolutions", WACV 2022), big-lama exported to ONNX, run with ONNX Runtime.

Two ONNX layouts are understood, told apart by the model's inputs:

* **two inputs** (the Carve/LaMa-ONNX export registered as ``lama``): ``image``
  ``[1, 3, S, S]`` RGB in 0..1 and ``mask`` ``[1, 1, S, S]`` (1 = hole); the output
  ``[1, 3, S, S]`` is RGB in 0..255;
* **one 4-channel input** (browser exports): the masked RGB in 0..1 and the mask stacked as
  ``[1, 4, S, S]``; the output is RGB in 0..1.

``S`` is read from the model (512 when its axes are dynamic). The network sees a square window
around the hole with as much context again as the hole is large (:func:`context_window`),
resized to ``S``; its output is resized back and composited, so only hole pixels change.
"""

from __future__ import annotations

import numpy as np

from staging.errors import StagingError
from staging.inpaint.base import Inpainter, context_window, resize_to

DEFAULT_SIZE = 512


class LamaInpainter(Inpainter):
    name = "lama"

    def __init__(self, session, name: str = "lama"):
        self.session = session
        self.name = name
        inputs = session.get_inputs()
        self.output_name = session.get_outputs()[0].name
        if len(inputs) == 2:
            masks = [i for i in inputs if "mask" in i.name.lower() or _channels(i) == 1]
            mask = masks[0] if masks else inputs[1]
            image = inputs[0] if inputs[0] is not mask else inputs[1]
            self.layout = "image+mask"
            self.image_name, self.mask_name = image.name, mask.name
            self.output_scale = 1.0  # already 0..255
            shape_from = image
        elif len(inputs) == 1 and _channels(inputs[0]) == 4:
            self.layout = "rgbm"
            self.image_name, self.mask_name = inputs[0].name, None
            self.output_scale = 255.0
            shape_from = inputs[0]
        else:
            described = ", ".join(f"{i.name}{i.shape}" for i in inputs)
            raise StagingError(
                f"Not a LaMa ONNX model: expected inputs image [1,3,S,S] + mask [1,1,S,S], or "
                f"one [1,4,S,S] input; this one has {described}."
            )
        dims = shape_from.shape[2:]
        fixed = [d for d in dims if isinstance(d, int) and d > 0]
        self.size = fixed[0] if len(fixed) == 2 and fixed[0] == fixed[1] else DEFAULT_SIZE

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = context_window(hole, min_side=self.size)
        crop = image[y0:y1, x0:x1]
        s = self.size
        rgb = resize_to(crop, s, s).astype(np.float32) / 255.0
        # Any hole coverage makes a hole pixel: the network must not trust blended colours.
        cover = resize_to(hole[y0:y1, x0:x1].astype(np.float32), s, s)
        mask = (cover > 1e-3).astype(np.float32)
        rgb *= 1.0 - mask[..., None]
        image_t = rgb.transpose(2, 0, 1)[None]
        mask_t = mask[None, None]
        if self.layout == "image+mask":
            feeds = {self.image_name: image_t, self.mask_name: mask_t}
        else:
            feeds = {self.image_name: np.concatenate([image_t, mask_t], axis=1)}
        result = self.session.run([self.output_name], feeds)[0]
        if result.ndim != 4 or result.shape[:2] != (1, 3):
            raise StagingError(f"LaMa returned an output of shape {result.shape}, not [1,3,S,S].")
        out_rgb = np.clip(result[0].transpose(1, 2, 0) * self.output_scale, 0, 255)
        out_rgb = resize_to(out_rgb.astype(np.float32), x1 - x0, y1 - y0)
        out = image.copy()
        out[y0:y1, x0:x1] = np.clip(np.rint(out_rgb), 0, 255).astype(np.uint8)
        return out


def _channels(arg) -> int | None:
    shape = arg.shape
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None
