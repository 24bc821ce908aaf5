"""``sd`` and ``sd2``: Stable Diffusion 1.5 / 2 inpainting paints the background around the
product (diffusers ``StableDiffusionInpaintPipeline``).

The 9-channel inpainting UNet sees the product (the unmasked region) at every step, so the
scene it paints is lit and laid out around it. Both checkpoints work at 512² natively; the
canvas is generated at that pixel count in its own aspect ratio (see
:func:`~staging.generate._diffusers.working_size`).

Weights: ``staging models pull sd-inpainting`` (SD 1.5) or ``sd2-inpainting`` (SD 2).
"""

from __future__ import annotations

from staging.diffusion import load_pipeline
from staging.generate._diffusers import DiffusionGenerator

PIPELINE = "StableDiffusionInpaintPipeline"


class StableDiffusionGenerator(DiffusionGenerator):
    """SD 1.5 or SD 2 inpainting; ``name`` and ``models`` are set per instance."""

    default_steps = 30
    default_guidance = 7.5

    def __init__(self, pipeline, name: str, model: str, device: str = "cpu", size=None):
        super().__init__(pipeline, device=device, size=size)
        self.name = name
        self.models = (model,)

    @classmethod
    def from_store(cls, runtime, name: str = "sd", model: str = "sd-inpainting", **kwargs):
        """Load ``model`` from the models directory (once; the engine caches the result)."""
        return cls(load_pipeline(runtime, PIPELINE, model), name, model, runtime.device, **kwargs)
