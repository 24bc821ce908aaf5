"""Typed options of the staging modes, shared by the engine, its pipelines and their callers.

Each staging mode takes a dozen settings. Written once here as frozen dataclasses, they are
checked in one place and passed as one value, instead of copied into every signature that
forwards them (the engine's methods, the pipelines, batch and the service). The engine's
methods keep their keyword arguments and build these objects from them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.errors import StagingError

if TYPE_CHECKING:
    from staging.generate.cache import GenerationCache
    from staging.io import ImageSource

SCENE_SIDE = 1024  # copy-paste works on (and returns) scenes at most this long
INPAINT_SIDE = 384  # a scene's hole is filled at this long side and scaled back up
Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The progress callback of a caller that does not listen."""


class _Options:
    def as_dict(self) -> dict[str, Any]:
        """The options as keyword arguments (of the engine method they mirror)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class CopyPasteOptions(_Options):
    """How :meth:`~staging.StagingEngine.stage_copy_paste` stages a product into catalog
    scenes (the arguments are documented there)."""

    k: int = 3
    category: str | None = None
    shadow: bool = True
    harmonize: bool = True
    inpaint_backend: str | None = None
    segment_backend: str | None = None
    max_side: int = SCENE_SIDE
    inpaint_side: int = INPAINT_SIDE
    product_type: str | None = None
    product_size: str | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise StagingError(f"k must be at least 1, got {self.k}.")


@dataclass(frozen=True)
class InSceneOptions(_Options):
    """What the user set by hand (see :meth:`~staging.StagingEngine.stage_in_scene`)."""

    object_at: tuple[float, float] | None = None
    box: tuple[int, int, int, int] | None = None
    remove: bool | None = None
    position: tuple[float, float] | None = None
    scale: float = 1.0
    shadow: bool = True
    harmonize: bool = True
    product_type: str | None = None
    product_size: str | None = None
    object_size: str | None = None
    inpaint_backend: str | None = None
    segment_backend: str | None = None
    max_side: int = SCENE_SIDE
    inpaint_side: int = INPAINT_SIDE
    object_type: str | None = None


@dataclass(frozen=True)
class GenerationOptions(_Options):
    """How :meth:`~staging.StagingEngine.stage_vanilla` and ``stage_prompt`` generate
    backgrounds around a product (the arguments are documented at ``stage_prompt``)."""

    placement: Any = None
    fill: float = 0.6
    align: str = "center"
    margin: float = 0.05
    seed: int = 0
    num_images: int = 1
    backend: str | None = None
    mask: np.ndarray | ImageSource | None = None
    steps: int | None = None
    guidance: float | None = None
    cache: GenerationCache | str | os.PathLike | bool | None = None
    segment_backend: str | None = None

    def __post_init__(self) -> None:
        if self.num_images < 1:
            raise StagingError(f"num_images must be at least 1, got {self.num_images}.")

    @property
    def seeds(self) -> list[int]:
        """One seed per image: ``seed .. seed + num_images - 1``."""
        return [int(self.seed) + i for i in range(self.num_images)]


@dataclass(frozen=True)
class ParallaxOptions(_Options):
    """How :meth:`~staging.StagingEngine.parallax` animates a photo (documented there)."""

    seconds: float = 3.0
    fps: float = 30.0
    motion: str = "pan"
    strength: float | None = None
    size: str | tuple[int, int] | None = None
    loop: bool = True
    fit: str = "auto"
    inpaint_backend: str | None = None
    segment_backend: str | None = None
