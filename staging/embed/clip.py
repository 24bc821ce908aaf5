"""``clip``: the CLIP image tower (transformers ``CLIPVisionModelWithProjection``).

Default checkpoint ``openai/clip-vit-base-patch32`` (512-d ``image_embeds``), read from the
Hugging Face cache; offline (``STAGING_OFFLINE`` / ``HF_HUB_OFFLINE``) only local files are
used. torch and transformers are imported lazily. Input: the masked product crop on white,
squared, resized to the model's size, CLIP mean/std.
"""

from __future__ import annotations

from staging.embed._torch import TorchImageEmbedder, require, torch_device
from staging.errors import ModelNotAvailableError

CHECKPOINT = "openai/clip-vit-base-patch32"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INSTALL = "torch transformers"


class ClipEmbedder(TorchImageEmbedder):
    name = "clip"

    def forward(self, batch):
        return self.module(pixel_values=batch).image_embeds


def create(runtime, checkpoint: str = CHECKPOINT, batch_size: int = 16) -> ClipEmbedder:
    require("torch", INSTALL, "clip")
    transformers = require("transformers", INSTALL, "clip")
    offline = bool(getattr(runtime.store, "offline", False))
    try:
        model = transformers.CLIPVisionModelWithProjection.from_pretrained(
            checkpoint, local_files_only=offline
        )
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types
        raise ModelNotAvailableError(
            f"Could not load the CLIP checkpoint {checkpoint!r}: {exc}. Download it once with "
            f"network access (huggingface-cli download {checkpoint}), then run offline."
        ) from exc
    config = model.config
    return ClipEmbedder(
        model,
        config.projection_dim,
        config.image_size,
        CLIP_MEAN,
        CLIP_STD,
        torch_device(runtime),
        batch_size,
    )
