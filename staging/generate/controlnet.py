"""``controlnet``: SD 1.5 inpainting steered by a Canny ControlNet (Taboola's pipeline, step 4).

Plain inpainting "often produces unwanted artifacts & extends the product": the model sees
a chair-shaped hole and paints a second chair around it. Conditioning on the product's edges
(and its reinforced outline, :mod:`staging.generate.edges`) tells the model where the product
ends, which removes most of that. Edges are given only on the product: conditioning the
background too would fix its composition and colours.

Weights: ``staging models pull sd-inpainting controlnet-canny-sd15`` (diffusers
``StableDiffusionControlNetInpaintPipeline`` with ``lllyasviel/control_v11p_sd15_canny``).
"""

from __future__ import annotations

import numpy as np

from staging.diffusion import load_component, load_pipeline, require_diffusers, require_models
from staging.generate._diffusers import DiffusionGenerator
from staging.generate.base import GenerationRequest
from staging.generate.edges import resize_control

PIPELINE = "StableDiffusionControlNetInpaintPipeline"
BASE = "sd-inpainting"
CONTROLNET = "controlnet-canny-sd15"


class ControlNetGenerator(DiffusionGenerator):
    name = "controlnet"
    models = (BASE, CONTROLNET)
    uses_control = True
    default_steps = 30
    default_guidance = 7.5

    def __init__(self, pipeline, device: str = "cpu", size=None, conditioning_scale=0.8):
        super().__init__(pipeline, device=device, size=size)
        self.conditioning_scale = conditioning_scale

    @classmethod
    def from_store(
        cls, runtime, base: str = BASE, controlnet: str = CONTROLNET, **kwargs
    ) -> ControlNetGenerator:
        """Load the ControlNet and the inpainting base it steers from the models directory."""
        require_models(runtime, base, controlnet)  # both named at once, before importing torch
        _, diffusers = require_diffusers("backend 'controlnet'")
        net = load_component(runtime, diffusers.ControlNetModel, controlnet)
        pipeline = load_pipeline(runtime, PIPELINE, base, controlnet=net)
        generator = cls(pipeline, runtime.device, **kwargs)
        generator.models = (base, controlnet)
        return generator

    def extra_kwargs(self, request: GenerationRequest, width: int, height: int) -> dict:
        from PIL import Image

        control = resize_control(np.asarray(request.control), width, height)
        return {
            "control_image": Image.fromarray(control),
            "controlnet_conditioning_scale": self.conditioning_scale,
        }
