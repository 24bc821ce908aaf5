"""Typed options of the staging modes, shared by the engine, its pipelines and their callers.

Each staging mode takes a dozen settings. Written once here as frozen dataclasses, they are
checked in one place and passed as one value, instead of copied into every signature that
forwards them (the engine's methods, the pipelines, batch and the service). The engine's
methods take one of these as ``options=`` and any of its fields as keywords, which override
it, as transformers' ``generate(generation_config=None, **kwargs)`` does:
``engine.stage_copy_paste(photo, index=ix, k=5, shadow=False)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from staging.errors import StagingError

if TYPE_CHECKING:
    from staging.generate.cache import GenerationCache
    from staging.io import ImageSource

SCENE_SIDE = 1024  # copy-paste works on (and returns) scenes at most this long
INPAINT_SIDE = 384  # a scene's hole is filled at this long side and scaled back up
Progress = Callable[[float, str], None]
Opts = TypeVar("Opts", bound="_Options")


def no_progress(fraction: float, message: str) -> None:
    """The progress callback of a caller that does not listen."""


class _Options:
    @classmethod
    def build(cls: type[Opts], options: Opts | None, overrides: Mapping[str, Any]) -> Opts:
        """``options`` (None: the defaults) with the fields named in ``overrides`` replaced;
        a name that is not a field is a TypeError, as Python's own for a keyword argument."""
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"options must be a {cls.__name__}, got {type(options).__name__}.")
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = [name for name in overrides if name not in names]
        if unknown:
            raise TypeError(
                f"unexpected keyword argument {unknown[0]!r}; the options of {cls.__name__} "
                f"are: {', '.join(names)}."
            )
        return replace(options if options is not None else cls(), **overrides)


@dataclass(frozen=True)
class CopyPasteOptions(_Options):
    """How :meth:`~staging.StagingEngine.stage_copy_paste` stages a product into catalog
    scenes (each field is documented at
    :class:`~staging.pipelines.copy_paste.CopyPastePipeline`)."""

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
    """What the user set by hand in :meth:`~staging.StagingEngine.stage_in_scene` (each field
    is documented at :class:`~staging.pipelines.in_scene.InScenePipeline`)."""

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
    backgrounds around a product (each field is documented at
    :class:`~staging.pipelines.generated.GeneratedPipeline`)."""

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
    """How :meth:`~staging.StagingEngine.parallax` animates a photo (each field is documented
    at :class:`~staging.pipelines.parallax.ParallaxPipeline`)."""

    seconds: float = 3.0
    fps: float = 30.0
    motion: str = "pan"
    strength: float | None = None
    size: str | tuple[int, int] | None = None
    loop: bool = True
    fit: str = "auto"
    inpaint_backend: str | None = None
    segment_backend: str | None = None
