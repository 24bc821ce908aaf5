"""Inpainting backends, chosen by name.

==========================  ===============================================================
name                        what runs
==========================  ===============================================================
``auto`` (default)          the best fill on disk, never downloading: ``sd`` on a CUDA
                            device with torch, diffusers and its weights, else ``lama`` once
                            pulled, else ``structure`` (:func:`best_available`)
``structure``               weights-free structure-guided anisotropic diffusion: carries the
                            lines entering the hole across it, smooth elsewhere (measured
                            best of the weights-free methods on holes in room photos); what
                            ``auto`` falls back to
``exemplar``                real texture copied along the same rows of the same surface (a
                            constrained shift map); ``structure`` where no clean source exists
``telea``, ``ns``           OpenCV's fast marching (Telea 2004) / Navier-Stokes: baselines
``lama``                    LaMa (Suvorov et al. 2022), big-lama exported to ONNX, from the
                            model registry
``sd``                      Stable Diffusion inpainting (diffusers; needs torch + weights)
``edgeconnect[:DIR]``       EdgeConnect (Nazeri et al. 2019) as trained by ``staging train
                            inpaint``: the folder ``DIR``, else ``edgeconnect`` in the models
                            directory (needs torch)
==========================  ===============================================================

Every backend keeps the pixels outside the hole bit-exact (:class:`Inpainter` composites).
"""

from __future__ import annotations

from collections.abc import Callable

from staging.errors import UnknownNameError
from staging.inpaint.base import Inpainter
from staging.runtime import Runtime

AUTO = "auto"  # what None means for the engine: the best fill on disk (best_available)
DEFAULT = "structure"  # the weights-free fill: auto's fallback, and the evaluation's default


def _opencv(method: str) -> Callable[[Runtime], Inpainter]:
    def factory(runtime: Runtime) -> Inpainter:
        from staging.inpaint.opencv import OpenCVInpainter

        return OpenCVInpainter(method)

    return factory


def _structure(runtime: Runtime) -> Inpainter:
    from staging.inpaint.structure import StructureInpainter

    return StructureInpainter()


def _exemplar(runtime: Runtime) -> Inpainter:
    from staging.inpaint.exemplar import ExemplarInpainter
    from staging.inpaint.structure import StructureInpainter

    return ExemplarInpainter(fallback=StructureInpainter())


def _lama(runtime: Runtime) -> Inpainter:
    from staging.inpaint.lama import LamaInpainter

    return LamaInpainter(runtime.onnx_session(runtime.store.path("lama")))


def _sd(runtime: Runtime) -> Inpainter:
    from staging.inpaint.sd import StableDiffusionInpainter

    return StableDiffusionInpainter.from_store(runtime)


def _edgeconnect(runtime: Runtime, folder: str | None = None) -> Inpainter:
    """A trained model folder: ``folder``, else ``edgeconnect`` in a models directory."""
    from staging.inpaint.edgeconnect import EdgeConnectInpainter
    from staging.trained import find_folder

    where = find_folder(runtime, "edgeconnect", folder, "EdgeConnect model",
                        "staging train inpaint", "--inpaint")  # fmt: skip
    return EdgeConnectInpainter(where, device=runtime.device)


BACKENDS: dict[str, Callable[[Runtime], Inpainter]] = {
    "structure": _structure,
    "exemplar": _exemplar,
    "telea": _opencv("telea"),
    "ns": _opencv("ns"),
    "lama": _lama,
    "sd": _sd,
    "edgeconnect": _edgeconnect,
}


def best_available(runtime: Runtime) -> str:
    """The best inpainting backend this machine runs without downloading anything: what
    ``auto`` means.

    ``sd`` when the runtime's device is CUDA, torch, diffusers and transformers are installed
    (looked up, not imported: importing torch takes seconds) and ``sd-inpainting`` is on disk;
    else ``lama`` when its ONNX file is (``staging models pull lama``); else ``structure``.

    Why this order: Stable Diffusion can invent the floor and wall a large hole hides, but its
    25 denoising steps of a UNet are practical only on a GPU, so it is never chosen on a CPU
    or MPS. LaMa is trained on large masks (Suvorov et al. 2022), one forward pass through
    ONNX Runtime on any device, no torch. ``structure`` needs nothing and is the best of the
    weights-free fills on holes in room photos (BENCHMARKS.md; ``lama`` and ``sd`` are not
    measured there, their weights were not available). A model is used only when its files
    are already on disk: ``auto`` never fetches one behind the user's back.
    """
    import importlib.util

    store = runtime.store
    if runtime.device.startswith("cuda") and store.find("sd-inpainting") is not None:
        try:
            stack = all(
                importlib.util.find_spec(m) is not None
                for m in ("torch", "diffusers", "transformers")
            )
        except (ImportError, ValueError):  # a module blocked in sys.modules has no spec
            stack = False
        if stack:
            return "sd"
    if store.find("lama") is not None:
        return "lama"
    return DEFAULT


def create_inpainter(name: str, runtime: Runtime) -> Inpainter:
    """Build the backend called ``name`` (loading its weights: call once, then reuse);
    ``auto``: the one :func:`best_available` names."""
    if name == AUTO:
        name = best_available(runtime)
    if name in BACKENDS:
        return BACKENDS[name](runtime)
    if name.startswith("edgeconnect:"):
        return _edgeconnect(runtime, name.split(":", 1)[1])
    raise UnknownNameError(
        f"Unknown inpainting backend {name!r}. Use one of: {AUTO}, {', '.join(BACKENDS)}."
    )


__all__ = ["AUTO", "BACKENDS", "DEFAULT", "Inpainter", "best_available", "create_inpainter"]
