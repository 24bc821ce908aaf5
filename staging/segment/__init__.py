"""Segmentation backends, chosen by name.

==========================  ===============================================================
name                        what runs
==========================  ===============================================================
``isnet-general-fp16``,     IS-Net (DIS), our ONNX code with edges refined at full resolution
``isnet-general-use``       (the fp16 and the fp32 file of the same network)
``u2net``, ``u2netp``       U^2-Net / U^2-Net-p (the paper's segmenter), our ONNX code
``birefnet-general``, ...   rembg sessions on weights from the model registry
``backdrop``                weights-free matting, only for product shots on plain backdrops
``catalog``                 alias of ``backdrop`` (its former name: old settings and requests)
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

# Pretrained backends in the order ``auto`` prefers them when their weights are present: by
# quality measured on held-out real objects (IoU per backend in BENCHMARKS.md).
PRETRAINED_PREFERENCE = (
    "isnet-general-fp16",
    "isnet-general-use",
    "birefnet-general",
    "birefnet-general-lite",
    "u2net",
    "u2netp",
)
# What ``auto`` pulls on first use when no pretrained file is on disk (downloads allowed).
RECOMMENDED = "isnet-general-fp16"
REMBG_REGISTERED = ("birefnet-general", "birefnet-general-lite")
ISNET_NORMALIZATION = {"isnet-general-fp16": "imgly", "isnet-general-use": "dis"}


def _backdrop(runtime: Runtime) -> Segmenter:
    from staging.segment.backdrop import BackdropSegmenter

    return BackdropSegmenter()


def _isnet(name: str) -> Callable[[Runtime], Segmenter]:
    def factory(runtime: Runtime) -> Segmenter:
        from staging.segment.isnet import IsNetSegmenter, fp32_graph

        path = runtime.store.path(name)
        model = fp32_graph(path) if name == "isnet-general-fp16" else path
        normalization = ISNET_NORMALIZATION[name]
        return IsNetSegmenter(runtime.onnx_session(model), name, normalization)

    return factory


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
    "backdrop": _backdrop,
    **{name: _isnet(name) for name in ISNET_NORMALIZATION},
    "u2net": _u2net("u2net"),
    "u2netp": _u2net("u2netp"),
    **{name: _rembg(name) for name in REMBG_REGISTERED},
}
# Former names still accepted wherever a backend is named (settings, CLI flags, API requests);
# each builds the same segmenter as the name it stands for. "catalog" was renamed "backdrop":
# "catalog" also names the catalog index package.
ALIASES = {"catalog": "backdrop"}


def canonical_backend(name: str) -> str:
    """The registered name that ``name`` stands for (an alias resolved; others unchanged)."""
    return ALIASES.get(name, name)


def create_segmenter(name: str, runtime: Runtime) -> Segmenter:
    """Build the backend called ``name`` (loading its weights: call once, then reuse); an alias
    of :data:`ALIASES` builds the backend it stands for."""
    name = canonical_backend(name)
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
        f"{', '.join(f'{old} (= {new})' for old, new in ALIASES.items())}, rembg:<session>, "
        "or the path of a .onnx file."
    )


__all__ = [
    "ALIASES",
    "BACKENDS",
    "PRETRAINED_PREFERENCE",
    "RECOMMENDED",
    "Segmentation",
    "Segmenter",
    "canonical_backend",
    "create_segmenter",
]
