"""``inception_v3``: the paper's embedder (Sec. 5.3), Inception-V3's 2048-d pooled features.

Needs torch plus torchvision (``IMAGENET1K_V1`` weights) or timm (``inception_v3.tv_in1k``);
both are imported lazily. Weights come from those libraries' caches: offline (``STAGING_OFFLINE``
/ ``HF_HUB_OFFLINE``) nothing is downloaded and a missing cache is a clear error. Input: the
masked product crop on white, 299 x 299, ImageNet mean/std.
"""

from __future__ import annotations

from staging.embed._torch import TorchImageEmbedder, require, torch_device
from staging.errors import ModelNotAvailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INSTALL = "torch torchvision   (or: pip install torch timm)"


class InceptionV3Embedder(TorchImageEmbedder):
    name = "inception_v3"


def _load_torchvision(offline: bool):
    models = require("torchvision.models", INSTALL, "inception_v3")
    weights = models.Inception_V3_Weights.IMAGENET1K_V1
    if offline:
        import os

        torch = require("torch", INSTALL, "inception_v3")
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", weights.url.rsplit("/", 1)[-1])
        if not os.path.exists(cached):
            raise ModelNotAvailableError(
                f"Inception-V3 weights are not in torch's cache ({cached}) and offline mode "
                f"forbids downloading them from {weights.url}."
            )
    model = models.inception_v3(weights=weights, aux_logits=True)
    model.fc = require("torch.nn", INSTALL, "inception_v3").Identity()
    return model


def _load_timm(offline: bool):
    timm = require("timm", INSTALL, "inception_v3")
    if offline:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return timm.create_model("inception_v3.tv_in1k", pretrained=True, num_classes=0)


def create(runtime, batch_size: int = 16) -> InceptionV3Embedder:
    require("torch", INSTALL, "inception_v3")
    offline = bool(getattr(runtime.store, "offline", False))
    try:
        model = _load_torchvision(offline)
    except ModelNotAvailableError:
        raise
    except Exception as first:  # noqa: BLE001 - torchvision missing or broken: try timm
        try:
            model = _load_timm(offline)
        except ModelNotAvailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelNotAvailableError(
                f"Could not load Inception-V3 weights (torchvision: {first}; timm: {exc}). "
                f"Install with: pip install {INSTALL}"
            ) from exc
    return InceptionV3Embedder(
        model, 2048, 299, IMAGENET_MEAN, IMAGENET_STD, torch_device(runtime), batch_size
    )
