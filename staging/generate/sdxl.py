"""``sdxl``: Stable Diffusion XL inpainting (diffusers ``StableDiffusionXLInpaintPipeline``).

SDXL works at 1024² natively and follows prompts much better than SD 1.5, at roughly four
times the cost per step. Its model card asks for ``strength`` just below 1 (0.99): at
exactly 1 the inpainting checkpoint's outputs drift in colour.

Weights: ``staging models pull sdxl-inpainting`` (the fp16 files, ~6.9 GB; on CPU they are
upcast to fp32).
"""

from __future__ import annotations

from staging.diffusion import load_pipeline
from staging.generate._diffusers import DiffusionGenerator

PIPELINE = "StableDiffusionXLInpaintPipeline"
MODEL = "sdxl-inpainting"


class StableDiffusionXLGenerator(DiffusionGenerator):
    name = "sdxl"
    models = (MODEL,)
    default_steps = 30
    default_guidance = 7.0
    strength = 0.99

    @classmethod
    def from_store(cls, runtime, model: str = MODEL, **kwargs) -> StableDiffusionXLGenerator:
        """Load the SDXL inpainting pipeline from the models directory."""
        generator = cls(load_pipeline(runtime, PIPELINE, model), runtime.device, **kwargs)
        generator.models = (model,)
        return generator
