"""``sd``: Stable Diffusion 1.5 inpainting through diffusers' ``StableDiffusionInpaintPipeline``.

Heavy and optional: torch and diffusers are imported only when the backend is created, and a
clear :class:`~staging.errors.StagingError` names the pip command when they are missing
(loading is shared with the background generators, :mod:`staging.diffusion`). The
weights come from the model registry (``sd-inpainting``), loaded from disk only
(``local_files_only``), never fetched behind the user's back.

The pipeline sees a square window around the hole (as for LaMa) at 512 px; its VAE changes
colours slightly everywhere, which does not matter: :class:`Inpainter` keeps every pixel outside
the hole bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from staging.inpaint.base import Inpainter, context_window, resize_to

DEFAULT_PROMPT = "empty room interior, floor and wall, photorealistic, high quality"
DEFAULT_NEGATIVE = "furniture, object, person, text, watermark, blurry, distorted"


@dataclass(eq=False, repr=False)
class StableDiffusionInpainter(Inpainter):
    name = "sd"

    pipeline: Any
    device: str = "cpu"
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE
    steps: int = 25
    guidance: float = 7.5
    seed: int = 0
    size: int = 512

    @classmethod
    def from_store(
        cls, runtime, model: str = "sd-inpainting", **kwargs
    ) -> StableDiffusionInpainter:
        """Load the pipeline from the models directory onto the runtime's device.

        The loading rules (local files only, fp16 and memory savers on CUDA, clear errors
        naming ``pip install`` / ``staging models pull``) are shared with the background
        generators: :func:`staging.diffusion.load_pipeline`.
        """
        from staging.diffusion import load_pipeline

        pipeline = load_pipeline(runtime, "StableDiffusionInpaintPipeline", model)
        return cls(pipeline, device=runtime.device, **kwargs)

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        y0, y1, x0, x1 = context_window(hole, min_side=self.size)
        s = self.size
        crop = resize_to(image[y0:y1, x0:x1], s, s)
        cover = resize_to(hole[y0:y1, x0:x1].astype(np.float32), s, s)
        mask = Image.fromarray(((cover > 1e-3) * 255).astype(np.uint8), mode="L")
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        result = self.pipeline(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            image=Image.fromarray(crop),
            mask_image=mask,
            height=s,
            width=s,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=generator,
        ).images[0]
        painted = np.asarray(result.convert("RGB"), dtype=np.uint8)
        out = image.copy()
        out[y0:y1, x0:x1] = resize_to(painted, x1 - x0, y1 - y0)
        return out
