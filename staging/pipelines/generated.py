"""Vanilla and prompt staging: a generated background around the product.

The steps after the prompt is chosen (the caller's: a theme, a category, a prompt):

1. **load the generator** first, so a missing model fails before any work;
2. **cut out** the product (its segmentation, or the given mask);
3. **generate** one background per aspect-ratio bucket and seed, the product drawn once per
   bucket and every placement a crop of it, the product cut back on top
   (:func:`staging.generate.pipeline.stage`, Taboola's steps 2-5), through the generation
   cache when one is given.

The pipeline gets its components from whoever builds it (the engine); it never imports the
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.options import GenerationOptions, Progress, no_progress
from staging.result import Staged
from staging.segment.base import Segmentation

if TYPE_CHECKING:
    from staging.compose.placement import Placement
    from staging.generate.base import Generator
    from staging.generate.cache import GenerationCache
    from staging.generate.pipeline import PromptChoice
    from staging.generate.prompts import PromptLibrary

BACKDROP_ONLY = "backdrop only (no diffusion model)"
STUDIO_GREY = (245, 245, 245)  # the plain backdrop of :func:`on_backdrop`


def on_backdrop(
    foreground: np.ndarray,
    alpha: np.ndarray,
    placement: Placement,
    background: tuple[int, int, int] = STUDIO_GREY,
) -> np.ndarray:
    """The product's cut-out (its colours and alpha) on a plain backdrop at ``placement``'s
    size, laid out as a generated creative is (:func:`staging.compose.placement.place_on_canvas`):
    what a creative service answers at once, with no model, while the generated creative is
    queued."""
    from staging.compose.placement import place_on_canvas

    return place_on_canvas(foreground, alpha, placement, background=background).image


def choose(
    mode: str,
    library: PromptLibrary,
    prompt: str | None,
    theme: str | int | None,
    category: str | None,
    negative_prompt: str | None = None,
    interests: Any = None,
) -> PromptChoice:
    """The prompt of a ``prompt`` or ``vanilla`` staging
    (:func:`staging.generate.pipeline.choose_prompt`): ``prompt`` as it is, else for
    ``prompt`` a theme of ``category`` in ``library`` (or an interest, or free scene text)
    personalised with the AdBooster ``interests``; for ``vanilla`` ``"a photo of a
    <category>"`` (themes, interests and negative prompts are not used)."""
    from staging.generate.pipeline import choose_prompt

    if mode == "vanilla":
        return choose_prompt("vanilla", prompt, None, category, library=library)
    from staging.generate.personalize import personalize

    extra = personalize(interests, library.interests).fragment if interests else None
    return choose_prompt(
        "prompt", prompt, theme, category, negative_prompt, library=library, extra=extra
    )


@dataclass(eq=False)
class GeneratedPipeline:
    """Generated-background staging (see the module doc).

    Args:
        resolve: the generator a name means (``auto``/None resolved).
        generator: the loaded generator of a resolved name.
        layer: the product's segmentation ``layer(rgb, mask, segment_backend)``.
        generation_cache: the cache a ``cache`` option names (a folder, True).
        hint: which diffusion model to pull, when none is on disk (else None).
    """

    resolve: Callable[[str | None], str]
    generator: Callable[[str], Generator]
    layer: Callable[[np.ndarray, Any, str | None], Segmentation]
    generation_cache: Callable[[Any], GenerationCache]
    hint: Callable[[], str | None]

    def __call__(
        self,
        mode: str,
        rgb: np.ndarray,
        choice: PromptChoice,
        options: GenerationOptions,
        progress: Progress | None = None,
    ) -> list[Staged]:
        """Generate ``mode``'s backgrounds around the product photo ``rgb``.

        Taboola's steps: (1) the product mask (``options.mask`` or its segmentation); (2) the
        product positioned and scaled for each placement (``fill``, ``align``, ``margin``);
        (3) Canny edges plus the mask contour; (4) the background generated (ControlNet
        backends condition on the edges); (5) the original product cut back on top,
        feathered by about a pixel.

        Args:
            mode: ``prompt`` or ``vanilla`` (what the results say they are).
            rgb: the product photo.
            choice: the prompt, chosen by the caller
                (:func:`staging.generate.pipeline.choose_prompt`): for ``prompt`` the prompt
                as given, else from a theme (a theme name or index of the category in the
                prompt library, an interest such as ``beach``, or free scene text; default
                the first theme) and the category ("Three-seat sofa" works), personalised
                with an AdBooster interest distribution when one is given; for ``vanilla``
                ``"a photo of a <category>"`` or, without a category, nothing.
            options: (:class:`~staging.options.GenerationOptions`)

                * ``placement``: a placement name (``square``, ``story``, ``leaderboard``...),
                  ``"WxH"``, a ratio (``"4:5"``), a ``(w, h)`` pair, or a list of them;
                  default ``square`` (1080x1080);
                * ``seed``, ``num_images``: seeds ``seed .. seed + num_images - 1``;
                * ``backend``: ``studio``, ``sd``, ``sd2``, ``sdxl``, ``controlnet`` or
                  None/``auto`` (``pix2pix``, the AdKDD paper's baseline, is reserved until
                  trained weights exist and raises an error that says so);
                * ``steps``, ``guidance``: diffusion settings (None: the backend's defaults);
                * ``cache``: a :class:`~staging.generate.cache.GenerationCache`, a folder,
                  True (the default folder) or None (no cache);
                * ``mask``, ``segment_backend``: the product's mask, or its segmenter.
            progress: ``progress(fraction, message)``.

        Returns:
            One :class:`~staging.result.Staged` per placement and seed (placements outer),
            ``mode`` as given; ``source`` names the backend, model, prompt, seed, placement,
            bucket and whether the generation came from the cache.
        """
        from staging.generate.pipeline import stage

        say = progress or no_progress
        o = options
        # 1. the generator, before segmenting: a missing model fails fast
        name = self.resolve(o.backend)
        say(0.0, f"loading the {name!r} generator")
        generator = self.generator(name)
        # 2. the product
        say(0.02, "segmenting the product")
        product = self.layer(rgb, o.mask, o.segment_backend)
        # 3. generate around it, through the cache
        cache = o.cache
        if cache is not None and cache is not False and not hasattr(cache, "get_or_generate"):
            cache = self.generation_cache(cache)
        extra: dict[str, Any] = {"segment_backend": product.backend}
        if name == "studio":  # the weights-free backdrop ignores the prompt's scene words
            extra["label"] = BACKDROP_ONLY
        hint = self.hint() if o.backend in (None, "", "auto") else None
        if hint:
            extra["hint"] = hint
        return stage(
            generator,
            product.foreground,
            product.alpha,
            choice,
            mode=mode,
            placements=o.placement,
            fill=o.fill,
            align=o.align,
            margin=o.margin,
            seeds=o.seeds,
            steps=o.steps,
            guidance=o.guidance,
            cache=None if cache is None or cache is False else cache,
            progress=lambda fraction, message: say(0.05 + 0.95 * fraction, message),
            source=extra,
        )
