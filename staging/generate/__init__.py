"""Background generators for vanilla and prompt-based staging, chosen by name.

==============  ===============================================================================
name            what runs (registry weights: ``staging models pull NAME``)
==============  ===============================================================================
``studio``      weights-free photographic backdrop: paper sweep, key light, contact shadow,
                colours from the prompt/theme words or the product's own hue (no weights)
``sd``          Stable Diffusion 1.5 inpainting (``sd-inpainting``)
``sd2``         Stable Diffusion 2 inpainting (``sd2-inpainting``)
``sdxl``        Stable Diffusion XL 1.0 inpainting, 1024 px (``sdxl-inpainting``)
``controlnet``  SD 1.5 inpainting steered by a Canny ControlNet on the product's edges,
                Taboola's pipeline (``sd-inpainting`` + ``controlnet-canny-sd15``)
``pix2pix``     the AdKDD paper's pix2pix vanilla-staging baseline, trained on your catalog
                by ``staging train pix2pix``: ``pix2pix/`` in a models directory, or
                ``pix2pix:DIR`` (needs torch; never picked by ``auto``)
==============  ===============================================================================

``auto`` (or None) is the first of :data:`PREFERENCE` whose weights are on disk, else
``studio``. Importing this package is cheap: torch and diffusers are imported only when a
diffusion backend is created.
"""

from __future__ import annotations

from collections.abc import Callable

from staging.errors import UnknownNameError
from staging.generate.base import GenerationRequest, Generator, Progress
from staging.runtime import Runtime

DEFAULT = "studio"
"""The weights-free backend ``auto`` falls back to."""

PREFERENCE = ("controlnet", "sdxl", "sd2", "sd")
"""Diffusion backends from best to worst for staging: ControlNet first because conditioning
on the product's edges is what stops inpainting from extending the product (Taboola)."""

WEIGHTS: dict[str, tuple[str, ...]] = {
    "studio": (),
    "sd": ("sd-inpainting",),
    "sd2": ("sd2-inpainting",),
    "sdxl": ("sdxl-inpainting",),
    "controlnet": ("sd-inpainting", "controlnet-canny-sd15"),
}
"""Registry models each backend loads (``staging models pull`` names)."""


def _studio(runtime: Runtime) -> Generator:
    from staging.generate.studio import StudioGenerator

    return StudioGenerator()


def _sd(name: str, model: str) -> Callable[[Runtime], Generator]:
    def factory(runtime: Runtime) -> Generator:
        from staging.generate.sd import StableDiffusionGenerator

        return StableDiffusionGenerator.from_store(runtime, name=name, model=model)

    return factory


def _sdxl(runtime: Runtime) -> Generator:
    from staging.generate.sdxl import StableDiffusionXLGenerator

    return StableDiffusionXLGenerator.from_store(runtime)


def _controlnet(runtime: Runtime) -> Generator:
    from staging.generate.controlnet import ControlNetGenerator

    return ControlNetGenerator.from_store(runtime)


def _pix2pix(runtime: Runtime, folder: str | None = None) -> Generator:
    """A trained model folder: ``folder``, else ``pix2pix`` in a models directory."""
    from staging.generate.pix2pix import Pix2PixGenerator
    from staging.trained import find_folder

    where = find_folder(
        runtime, "pix2pix", folder, "pix2pix generator (the AdKDD 2023 paper's vanilla-staging "
        "baseline, trained on your own catalog)", "staging train pix2pix", "--backend",
        ",\nor use --backend studio (weights-free).",
    )  # fmt: skip
    return Pix2PixGenerator(where, device=runtime.device)


BACKENDS: dict[str, Callable[[Runtime], Generator]] = {
    "studio": _studio,
    "sd": _sd("sd", "sd-inpainting"),
    "sd2": _sd("sd2", "sd2-inpainting"),
    "sdxl": _sdxl,
    "controlnet": _controlnet,
    "pix2pix": _pix2pix,
}


def available(name: str, runtime: Runtime) -> bool:
    """Whether every weight file ``name`` needs is on disk (never touches the network)."""
    models = WEIGHTS.get(name)
    return models is not None and all(runtime.store.find(m) is not None for m in models)


def best_available(runtime: Runtime) -> str:
    """The first of :data:`PREFERENCE` whose weights are on disk, else :data:`DEFAULT`."""
    for name in PREFERENCE:
        if available(name, runtime):
            return name
    return DEFAULT


def resolve(name: str | None, runtime: Runtime) -> str:
    """A concrete backend name for ``name`` (None or ``auto``: :func:`best_available`)."""
    if name in (None, "", "auto"):
        return best_available(runtime)
    if name not in BACKENDS and not name.startswith("pix2pix:"):
        raise UnknownNameError(
            f"Unknown generation backend {name!r}. Use one of: auto, {', '.join(BACKENDS)}."
        )
    return name


def create_generator(name: str, runtime: Runtime) -> Generator:
    """Build the backend called ``name`` (loading its weights: call once, then reuse)."""
    name = resolve(name, runtime)
    if name.startswith("pix2pix:"):
        return _pix2pix(runtime, name.split(":", 1)[1])
    return BACKENDS[name](runtime)


def missing_weights_hint(runtime: Runtime) -> str | None:
    """A one-paragraph note for UIs when no diffusion weights are on disk (None when some
    are): which model to pull for which backend, and how."""
    if best_available(runtime) != DEFAULT:
        return None
    return (
        "No diffusion weights found, so the weights-free 'studio' backdrop is used. For "
        "generated scenes, install the diffusion stack and pull a model:\n"
        "    pip install torch diffusers==0.42.1 transformers accelerate\n"
        "    staging models pull sd-inpainting controlnet-canny-sd15   # controlnet (best)\n"
        "    staging models pull sdxl-inpainting                      # sdxl\n"
        "A GPU is strongly recommended: on a CPU one 512 px image takes minutes."
    )


__all__ = [
    "BACKENDS",
    "DEFAULT",
    "PREFERENCE",
    "WEIGHTS",
    "GenerationRequest",
    "Generator",
    "Progress",
    "available",
    "best_available",
    "create_generator",
    "missing_weights_hint",
    "resolve",
]
