"""Product embedders for similar-product retrieval, chosen by name.

==================  =================================================================  ========
name                what runs                                                          needs
==================  =================================================================  ========
``handcrafted``     weights-free fusion of shape, HOG, colour and texture descriptors  nothing
                    of the masked product (the default: works on a fresh offline box)
``mobilenet_v2``    ImageNet MobileNetV2 pooled features (ONNX Runtime, 1280-d)        weights
``fused``           ``mobilenet_v2`` + the handcrafted shape/colour cues, weighted     weights
``inception_v3``    the paper's embedder: Inception-V3 2048-d pool features            torch +
                    (torchvision's ``Inception3``, registry weights ``inception_v3``)    weights
``clip``            CLIP image tower (transformers ``CLIPVisionModelWithProjection``), torch +
                    registry checkpoint ``clip-vit-base-patch32``                      weights
==================  =================================================================  ========

Every embedder returns ``float32`` unit vectors; embed the product with its mask so the
background is removed (see :mod:`staging.embed.base`).
"""

from __future__ import annotations

from collections.abc import Callable

from staging.embed.base import Embedder, l2_normalize, product_crop
from staging.errors import UnknownNameError
from staging.runtime import Runtime

DEFAULT = "handcrafted"
"""The weights-free embedder: always available."""

PRETRAINED_PREFERENCE = ("fused", "mobilenet_v2")
"""What ``best`` resolves to, in order, when the weights are present."""


def _handcrafted(runtime: Runtime) -> Embedder:
    from staging.embed.handcrafted import HandcraftedEmbedder

    return HandcraftedEmbedder()


def _mobilenet_v2(runtime: Runtime) -> Embedder:
    from staging.embed import mobilenet_v2

    return mobilenet_v2.create(runtime)


def _fused(runtime: Runtime) -> Embedder:
    from staging.embed import fused

    return fused.create(runtime)


def _inception_v3(runtime: Runtime) -> Embedder:
    from staging.embed import inception_v3

    return inception_v3.create(runtime)


def _clip(runtime: Runtime) -> Embedder:
    from staging.embed import clip

    return clip.create(runtime)


EMBEDDERS: dict[str, Callable[[Runtime], Embedder]] = {
    "handcrafted": _handcrafted,
    "mobilenet_v2": _mobilenet_v2,
    "fused": _fused,
    "inception_v3": _inception_v3,
    "clip": _clip,
}


def create_embedder(name: str | None, runtime: Runtime) -> Embedder:
    """Build the embedder called ``name`` (None: :data:`DEFAULT`; ``best``: the first of
    :data:`PRETRAINED_PREFERENCE` whose weights are on disk, else the default). Loading may
    read weights: build once, then reuse."""
    name = name or DEFAULT
    if name == "best":
        name = best_available(runtime)
    try:
        factory = EMBEDDERS[name]
    except KeyError:
        raise UnknownNameError(
            f"Unknown embedder {name!r}. Use one of: best, {', '.join(EMBEDDERS)}."
        ) from None
    return factory(runtime)


def best_available(runtime: Runtime) -> str:
    """The best embedder this machine can run without downloading anything."""
    if runtime.store.find("mobilenet_v2") is not None:
        try:
            import onnx  # noqa: F401 - needed to expose the feature map
        except ImportError:
            return DEFAULT
        return PRETRAINED_PREFERENCE[0]
    return DEFAULT


__all__ = [
    "DEFAULT",
    "EMBEDDERS",
    "Embedder",
    "best_available",
    "create_embedder",
    "l2_normalize",
    "product_crop",
]
