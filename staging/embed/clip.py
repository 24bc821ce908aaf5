"""``clip``: the CLIP image tower (transformers ``CLIPVisionModelWithProjection``).

The checkpoint is the registry model ``clip-vit-base-patch32`` (``openai/clip-vit-base-patch32``:
``config.json``, ``preprocessor_config.json``, ``model.safetensors``), a folder in the models
directory loaded with ``from_pretrained(folder)``; fetch it once with
``staging models pull clip-vit-base-patch32``. Nothing is downloaded behind the user's back. A
full ``CLIPModel`` checkpoint (like OpenAI's) loads as its vision tower plus projection; the
text tower's weights are ignored.

Input: the masked product crop on white, squared, then the checkpoint's own
``CLIPImageProcessor`` (resize, centre crop -- a no-op on the square crop --, CLIP mean/std).
Output: ``image_embeds`` (512-d for ViT-B/32), L2-normalised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from staging.embed._torch import (
    TorchImageEmbedder,
    checkpoint_errors,
    missing_weights,
    require,
    torch_device,
)
from staging.errors import StagingError

MODEL = "clip-vit-base-patch32"
"""The registry entry holding the default checkpoint."""
INSTALL = "torch transformers   (tested: pip install -r requirements-torch.txt)"


class ClipEmbedder(TorchImageEmbedder):
    name = "clip"

    def __init__(self, module, processor, device: str = "cpu", batch_size: int = 16, **kw):
        self.processor = processor
        crop = getattr(processor, "crop_size", None) or {}
        size = crop.get("height") or module.config.image_size
        super().__init__(
            module,
            module.visual_projection.out_features,
            size,
            processor.image_mean,
            processor.image_std,
            device=device,
            batch_size=batch_size,
            **kw,
        )

    def preprocess(self, crops: Sequence[np.ndarray]):
        pixels = self.processor(
            images=list(crops), return_tensors="pt", input_data_format="channels_last"
        )["pixel_values"]
        return pixels

    def forward(self, batch):
        return self.module(pixel_values=batch).image_embeds


def _processor_class(transformers):
    """``CLIPImageProcessor``; in transformers 5 it needs torchvision, so without torchvision
    fall back to its PIL twin ``CLIPImageProcessorPil`` (same resize/crop/normalise)."""
    import importlib.util

    pil = getattr(transformers, "CLIPImageProcessorPil", None)
    if pil is not None and importlib.util.find_spec("torchvision") is None:
        return pil
    return transformers.CLIPImageProcessor


def load_vision_tower(transformers, folder: Path, model: str = MODEL):
    """``CLIPVisionModelWithProjection`` from ``folder``, which may hold a vision-only or a full
    ``CLIPModel`` checkpoint. Every weight must come from the file: a missing or mis-shaped one
    (which transformers would silently re-initialise at random) is an error."""
    config = transformers.CLIPVisionConfig.from_pretrained(str(folder), local_files_only=True)
    top = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    if top.get("model_type") == "clip" and "projection_dim" in top:
        # A full CLIPModel keeps projection_dim at the top level; the vision sub-config's own
        # value may be absent (then transformers' default, 512) or stale.
        config.projection_dim = int(top["projection_dim"])
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the unused text tower is not worth a warning
    try:
        module, info = transformers.CLIPVisionModelWithProjection.from_pretrained(
            str(folder), config=config, local_files_only=True, output_loading_info=True
        )
    finally:
        transformers.logging.set_verbosity(verbosity)
    missing = missing_weights(info)
    if missing:
        raise StagingError(
            f"The CLIP checkpoint in {folder} lacks (or mis-shapes) {len(missing)} weights of the "
            f"image tower, e.g. {', '.join(sorted(missing)[:3])}. Fetch it again with:\n"
            f"    staging models pull {model} --force"
        )
    return module


def create(runtime, model: str = MODEL, batch_size: int = 16, fp16: bool = False) -> ClipEmbedder:
    """Load the CLIP image tower of registry model ``model`` onto ``runtime.device``.

    Raises :class:`~staging.errors.StagingError` naming the pip command when torch or
    transformers is missing, and :class:`~staging.errors.ModelNotAvailableError` naming
    ``staging models pull <model>`` when the checkpoint is not on disk.
    """
    require("torch", INSTALL, "clip")
    transformers = require("transformers", INSTALL, "clip")
    folder = runtime.store.path(model)  # ModelNotAvailableError names the pull command
    with checkpoint_errors("The clip embedder", folder, model, INSTALL):
        module = load_vision_tower(transformers, folder, model)
        processor = _processor_class(transformers).from_pretrained(
            str(folder), local_files_only=True
        )
    return ClipEmbedder(
        module, processor, device=torch_device(runtime), batch_size=batch_size, fp16=fp16
    )
