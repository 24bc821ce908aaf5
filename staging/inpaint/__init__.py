"""Inpainting backends, chosen by name.

==========================  ===============================================================
name                        what runs
==========================  ===============================================================
``structure`` (default)     weights-free structure-guided anisotropic diffusion: carries the
                            lines entering the hole across it, smooth elsewhere (measured
                            best of the weights-free methods on holes in room photos)
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

DEFAULT = "structure"


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


def create_inpainter(name: str, runtime: Runtime) -> Inpainter:
    """Build the backend called ``name`` (loading its weights: call once, then reuse)."""
    if name in BACKENDS:
        return BACKENDS[name](runtime)
    if name.startswith("edgeconnect:"):
        return _edgeconnect(runtime, name.split(":", 1)[1])
    raise UnknownNameError(
        f"Unknown inpainting backend {name!r}. Use one of: {', '.join(BACKENDS)}."
    )


__all__ = ["BACKENDS", "DEFAULT", "Inpainter", "create_inpainter"]
