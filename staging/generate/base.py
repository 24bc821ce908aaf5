"""The background-generator interface: one small class per backend, one contract for all.

A generator receives a :class:`GenerationRequest` — the product already placed on the target
canvas (step 2 of the staging pipeline), its alpha, the prompt, the seed and, for ControlNet
backends, the edge image (step 3) — and returns a full RGB frame of the canvas size (step 4).
It never has to keep the product intact: :mod:`staging.generate.pipeline` cuts the original
product back on top afterwards (step 5), so a diffusion model that repaints everything, or a
weights-free backdrop that ignores the product, go through exactly the same code.

The contract is checked here, once, rather than in every backend: inputs are validated, the
output must have the canvas's shape (floats are rounded to ``uint8``), and the progress
callback is called at least once with ``(total, total)`` when the generator finishes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from staging.errors import StagingError

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each denoising step (weights-free backends call it
once, ``(1, 1)``). Adapt it to a UI with e.g. ``lambda i, n: bar(i / n)``."""


@dataclass
class GenerationRequest:
    """What a generator needs to paint one background.

    Attributes:
        image: the canvas, RGB uint8 ``(H, W, 3)``: the product placed where it will appear;
            pixels outside the product are neutral filler the generator should replace.
        alpha: product coverage on the canvas, float32 ``(H, W)`` in ``[0, 1]``.
        prompt: text prompt ("" means unconditional).
        negative_prompt: what to avoid ("" for none).
        seed: the random seed; the same request and seed give the same image.
        steps: denoising steps (None: the backend's default).
        guidance: classifier-free guidance scale (None: the backend's default).
        control: the ControlNet conditioning image (RGB uint8, white edges on black), for the
            backends that use one (:attr:`Generator.uses_control`).
        progress: optional :data:`Progress` callback.
        hints: free-form extras (``theme``, ``category``, ``mode``) that weights-free
            backends may use; diffusion backends read only the prompt.
    """

    image: np.ndarray
    alpha: np.ndarray
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    control: np.ndarray | None = None
    progress: Progress | None = None
    hints: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the canvas."""
        return self.image.shape[1], self.image.shape[0]


class Generator(ABC):
    """A background generator. Subclasses implement :meth:`render` and set the attributes.

    Attributes:
        name: the backend name in :data:`staging.generate.BACKENDS`.
        models: registry names of the weights it runs (empty for weights-free backends),
            reported in every result's provenance.
        uses_control: whether it consumes :attr:`GenerationRequest.control` (ControlNet).
        default_steps: steps used when the request leaves them to the backend.
    """

    name: str = "?"
    models: tuple[str, ...] = ()
    uses_control: bool = False
    default_steps: int = 1

    def generate(self, request: GenerationRequest) -> np.ndarray:
        """The generated frame, RGB uint8 of the canvas's shape (product not yet cut back)."""
        check_request(request)
        if self.uses_control and request.control is None:
            raise StagingError(
                f"Generator {self.name!r} is conditioned on an edge image (ControlNet) but the "
                "request has no control image; build one with staging.generate.edges."
            )
        out = np.asarray(self.render(request))
        if out.shape != request.image.shape:
            raise StagingError(
                f"Generator {self.name!r} returned shape {out.shape}, expected "
                f"{request.image.shape}."
            )
        if out.dtype != np.uint8:
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out

    def steps_for(self, request: GenerationRequest) -> int:
        """The number of denoising steps this request will run."""
        return int(request.steps) if request.steps else self.default_steps

    def describe(self) -> dict[str, Any]:
        """Provenance for :attr:`staging.result.Staged.source`."""
        return {"backend": self.name, "model": "+".join(self.models) or None}

    @abstractmethod
    def render(self, request: GenerationRequest) -> np.ndarray:
        """Paint the frame for a validated request (RGB, canvas shape; uint8 or float)."""


def check_request(request: GenerationRequest) -> None:
    """Validate shapes and dtypes with messages a user can act on."""
    image, alpha = request.image, request.alpha
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise StagingError(
            f"The canvas must be an RGB array (H, W, 3), got {getattr(image, 'shape', image)!r}."
        )
    if image.dtype != np.uint8:
        raise StagingError(f"The canvas must be uint8, got {image.dtype}.")
    if min(image.shape[:2]) < 8:
        raise StagingError(f"The canvas {image.shape[1]}x{image.shape[0]} is too small.")
    if not isinstance(alpha, np.ndarray) or alpha.shape != image.shape[:2]:
        raise StagingError(
            f"The product alpha must be (H, W) = {image.shape[:2]}, got "
            f"{getattr(alpha, 'shape', alpha)!r}."
        )
    control = request.control
    if control is not None and (control.shape != image.shape or control.dtype != np.uint8):
        raise StagingError(
            f"The control image must be RGB uint8 {image.shape}, got {control.dtype} "
            f"{control.shape}."
        )
    if request.steps is not None and request.steps < 1:
        raise StagingError(f"steps must be at least 1, got {request.steps}.")


def report(progress: Progress | None, done: int, total: int) -> None:
    """Call ``progress`` if there is one (a failing callback is the caller's bug: it raises)."""
    if progress is not None:
        progress(int(done), int(total))
