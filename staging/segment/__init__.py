"""Segmentation backends, chosen by name.

==========================  ===============================================================
name                        what runs
==========================  ===============================================================
``catalog``                 weights-free matting for plain-background catalog shots
``hybrid``                  ``catalog`` and U^2-Net-p, the better map chosen per image
``u2net``, ``u2netp``       U^2-Net / U^2-Net-p (the paper's segmenter), our ONNX code
``isnet-general-use``,      rembg sessions on weights from the model registry
``birefnet-general``, ...
``rembg:<session>``         any rembg session whose ``<session>.onnx`` is in the models dir
``<path>.onnx``             a custom U^2-Net-style ONNX file (input 1x3xSxS, sigmoid output)
``auto``                    resolved by the engine: see :meth:`StagingEngine.segment`
==========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable

from staging.errors import UnknownNameError
from staging.runtime import Runtime
from staging.segment.base import Segmentation, Segmenter

# Pretrained backends in the order ``auto`` prefers them when their weights are present.
PRETRAINED_PREFERENCE = (
    "birefnet-general",
    "birefnet-general-lite",
    "isnet-general-use",
    "u2net",
    "u2netp",
)
REMBG_REGISTERED = ("isnet-general-use", "birefnet-general", "birefnet-general-lite")


def _catalog(runtime: Runtime) -> Segmenter:
    from staging.segment.catalog import CatalogSegmenter

    return CatalogSegmenter()


def _hybrid(runtime: Runtime) -> Segmenter:
    from staging.segment.catalog import CatalogSegmenter
    from staging.segment.hybrid import HybridSegmenter
    from staging.segment.u2net import U2NetSegmenter

    net = U2NetSegmenter(runtime.onnx_session(runtime.store.path("u2netp")), name="u2netp")
    return HybridSegmenter(CatalogSegmenter(), net)


def _u2net(name: str) -> Callable[[Runtime], Segmenter]:
    def factory(runtime: Runtime) -> Segmenter:
        from staging.segment.u2net import U2NetSegmenter

        return U2NetSegmenter(runtime.onnx_session(runtime.store.path(name)), name=name)

    return factory


def _rembg(name: str) -> Callable[[Runtime], Segmenter]:
    def factory(runtime: Runtime) -> Segmenter:
        from staging.segment.rembg_session import RembgSegmenter

        return RembgSegmenter(name, runtime.store.path(name), runtime)

    return factory


BACKENDS: dict[str, Callable[[Runtime], Segmenter]] = {
    "catalog": _catalog,
    "hybrid": _hybrid,
    "u2net": _u2net("u2net"),
    "u2netp": _u2net("u2netp"),
    **{name: _rembg(name) for name in REMBG_REGISTERED},
}


def create_segmenter(name: str, runtime: Runtime) -> Segmenter:
    """Build the backend called ``name`` (loading its weights: call once, then reuse)."""
    if name in BACKENDS:
        return BACKENDS[name](runtime)
    if name.startswith("rembg:"):
        from staging.segment.rembg_session import RembgSegmenter

        return RembgSegmenter.from_models_dir(name.removeprefix("rembg:"), runtime)
    if name.lower().endswith(".onnx"):
        from staging.segment.u2net import U2NetSegmenter

        return U2NetSegmenter.from_file(name, runtime)
    raise UnknownNameError(
        f"Unknown segmentation backend {name!r}. Use one of: auto, {', '.join(BACKENDS)}, "
        "rembg:<session>, or the path of a .onnx file."
    )


__all__ = [
    "BACKENDS",
    "PRETRAINED_PREFERENCE",
    "Segmentation",
    "Segmenter",
    "create_segmenter",
]
