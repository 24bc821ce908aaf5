"""``inception_v3``: the paper's embedder (Sec. 5.3), Inception-V3's 2048-d pooled features.

The network is torchvision's ``Inception3`` (written out in :mod:`staging.embed.inception_net`
so that torch alone runs it); its weights are the registry model
``inception_v3`` (torchvision's ``IMAGENET1K_V1`` state dict,
``inception_v3_google-0cc3c7bd.pth``), read from the models directory: fetch it once with
``staging models pull inception_v3``. Nothing is downloaded behind the user's back.

As torchvision does for these weights, ``transform_input`` is on (the Google weights expect
``[-1, 1]`` inputs; the module maps ImageNet-normalised input to that), the auxiliary classifier
is dropped and ``fc`` is replaced by ``Identity``, so the output is the 2048-d global-average
pool (after dropout, a no-op in eval mode). Input: the masked product crop on white, resized to
299 x 299, ImageNet mean/std.
"""

from __future__ import annotations

from staging.embed._torch import TorchImageEmbedder, require, torch_device
from staging.errors import StagingError

MODEL = "inception_v3"
"""The registry entry holding the weights."""
DIM = 2048
SIZE = 299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INSTALL = "torch   (tested: pip install -r requirements-torch.txt)"


class InceptionV3Embedder(TorchImageEmbedder):
    name = "inception_v3"


def build_module(state_dict: dict):
    """``Inception3`` (pool features, no aux head, ``fc`` = Identity) with ``state_dict`` loaded
    strictly. Accepts torchvision's state dicts with or without ``AuxLogits.*`` / ``fc.*``."""
    from staging.embed.inception_net import Inception3

    state = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")  # saved from a DataParallel wrapper
        if not key.startswith(("AuxLogits.", "fc.")):
            state[key] = value
    model = Inception3(transform_input=True)
    model.load_state_dict(state, strict=True)
    return model


def create(runtime, batch_size: int = 8, fp16: bool = False) -> InceptionV3Embedder:
    """Load Inception-V3 from the models directory onto ``runtime.device``.

    Raises :class:`~staging.errors.StagingError` naming the pip command when torch is
    missing, and :class:`~staging.errors.ModelNotAvailableError` naming
    ``staging models pull inception_v3`` when the weights are not on disk.
    """
    torch = require("torch", INSTALL, "inception_v3")
    path = runtime.store.path(MODEL)  # ModelNotAvailableError names the pull command
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state_dict, dict) and isinstance(state_dict.get("state_dict"), dict):
            state_dict = state_dict["state_dict"]
        model = build_module(state_dict)
    except Exception as exc:  # noqa: BLE001 - unpickling / shape errors of a bad file
        raise StagingError(
            f"Could not load the Inception-V3 weights from {path}: {exc}\n"
            f"The file may be damaged or not torchvision's Inception-V3 state dict; fetch it "
            f"again with:\n    staging models pull {MODEL} --force"
        ) from exc
    return InceptionV3Embedder(
        model,
        DIM,
        SIZE,
        IMAGENET_MEAN,
        IMAGENET_STD,
        device=torch_device(runtime),
        batch_size=batch_size,
        fp16=fp16,
    )
