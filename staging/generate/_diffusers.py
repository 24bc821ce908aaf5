"""The diffusion background generators' shared call: the canvas at the model's working size,
the product kept, the result back at the canvas size. Loading is :mod:`staging.diffusion`."""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from staging.generate.base import GenerationRequest, Generator, report


def working_size(width: int, height: int, native: int, multiple: int) -> tuple[int, int]:
    """The resolution to generate at: the canvas's aspect ratio with about the model's native
    pixel count (``native``²), both sides multiples of ``multiple``.

    Why not the canvas size: a model trained at 512² that is asked for 1080x1350 repeats
    objects and loses the layout; one asked for 300x250 produces mush. The generated frame is
    resized to the canvas afterwards and the full-resolution product is cut back on top.
    """
    aspect = width / height
    w = native * np.sqrt(aspect)
    h = native / np.sqrt(aspect)
    w = max(multiple, int(round(w / multiple)) * multiple)
    h = max(multiple, int(round(h / multiple)) * multiple)
    return w, h


def resize(array: np.ndarray, width: int, height: int, interp: int | None = None) -> np.ndarray:
    if array.shape[1] == width and array.shape[0] == height:
        return array
    if interp is None:
        shrink = width * height < array.shape[0] * array.shape[1]
        interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(array, (width, height), interpolation=interp)


def step_callback(progress, total: Callable[[], int]):
    """A diffusers ``callback_on_step_end`` reporting ``(step + 1, total)``."""

    def callback(pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        report(progress, step + 1, total())
        return callback_kwargs

    return callback


class DiffusionGenerator(Generator):
    """A diffusers inpainting pipeline as a background generator.

    The product is the *known* region and everything else is repainted (``strength`` near 1):
    the mask given to the pipeline is white outside ``alpha >= 0.5``. The canvas is resized to
    :func:`working_size` for the model and the result resized back; the pipeline code then
    cuts the full-resolution product back on top.

    Args:
        pipeline: a loaded diffusers inpainting pipeline.
        size: the native side in pixels (None: the UNet's ``sample_size`` times the VAE's
            scale factor: 512 for SD 1.5/2 inpainting, 1024 for SDXL).
    """

    default_steps = 30
    default_guidance = 7.5
    strength = 1.0

    def __init__(self, pipeline, device: str = "cpu", size: int | None = None):
        self.pipeline = pipeline
        self.device = device
        # One engine serves every request of the app; a diffusers pipeline keeps per-call
        # state (scheduler timesteps) and a GPU has memory for one run: one call at a time.
        self._lock = threading.Lock()
        unet = pipeline.unet
        scale = int(getattr(pipeline, "vae_scale_factor", 8))
        self.native = size or int(unet.config.sample_size) * scale
        # The UNet halves the latent once per down block but the last.
        self.multiple = scale * 2 ** (len(unet.config.block_out_channels) - 1)

    def render(self, request: GenerationRequest) -> np.ndarray:
        import torch
        from PIL import Image

        width, height = request.size
        w, h = working_size(width, height, self.native, self.multiple)
        canvas = resize(request.image, w, h)
        alpha = resize(request.alpha.astype(np.float32), w, h, cv2.INTER_LINEAR)
        mask = Image.fromarray(np.where(alpha >= 0.5, 0, 255).astype(np.uint8), mode="L")
        steps = self.steps_for(request)
        pipe = self.pipeline
        kwargs = self.extra_kwargs(request, w, h)
        generator = torch.Generator(device="cpu").manual_seed(int(request.seed))
        with self._lock, torch.inference_mode():
            result = pipe(
                prompt=request.prompt or "",
                negative_prompt=request.negative_prompt or None,
                image=Image.fromarray(canvas),
                mask_image=mask,
                height=h,
                width=w,
                strength=self.strength,
                num_inference_steps=steps,
                guidance_scale=(
                    self.default_guidance if request.guidance is None else request.guidance
                ),
                generator=generator,
                output_type="np",
                callback_on_step_end=step_callback(
                    request.progress, lambda: int(getattr(pipe, "num_timesteps", steps))
                ),
                **kwargs,
            ).images[0]
        frame = np.clip(np.rint(np.asarray(result, np.float32) * 255), 0, 255).astype(np.uint8)
        return resize(frame, width, height)

    def extra_kwargs(self, request: GenerationRequest, width: int, height: int) -> dict:
        """Backend-specific pipeline arguments (the ControlNet image, ...)."""
        return {}
