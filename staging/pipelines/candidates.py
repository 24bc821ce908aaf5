"""Every mode for one product, for one screen (the app's Studio grid, ``staging stage all``).

1. **copy-paste** into the ``k`` best scenes of the index (skipped without one);
2. **the category** of the generated modes: the one given, else the kind copy-paste took the
   product for;
3. **vanilla**, then **prompt** with the theme the category's bandit suggests.

A mode that cannot run (no index, a catalog without staged scenes, a generator that fails
with a :class:`~staging.errors.StagingError`) is listed in ``Candidates.skipped`` with the
reason instead of failing the others; when none runs, the first reason is raised. Each mode
is one of the engine's own calls, handed in as a component, so this file never imports the
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from staging.errors import StagingError
from staging.options import Progress
from staging.result import Candidates, Staged


@dataclass(eq=False)
class CandidatesPipeline:
    """Every mode's candidates (see the module doc).

    Args:
        copy_paste, vanilla, prompt: ``engine.stage_copy_paste`` / ``stage_vanilla`` /
            ``stage_prompt`` (each takes ``progress=``).
        suggest_theme: the bandit's theme for a category (``engine.suggest_prompt(c).theme``).
    """

    copy_paste: Callable[..., list[Staged]]
    vanilla: Callable[..., list[Staged]]
    prompt: Callable[..., list[Staged]]
    suggest_theme: Callable[[str | None], str]

    def __call__(
        self, rgb: Any, k: int = 3, index: Any = None, mask: Any = None,
        product_type: str | None = None, product_size: str | None = None,
        category: str | None = None, placement: Any = None, seed: int = 0,
        backend: str | None = None, progress: Progress | None = None,
    ) -> Candidates:  # fmt: skip
        say = progress or (lambda fraction, message: None)
        found = Candidates()

        def run(mode: str, start: float, end: float, call: Callable[..., list[Staged]]) -> None:
            def part(fraction: float, message: str) -> None:
                say(start + (end - start) * fraction, f"{mode}: {message}")

            try:
                found.results.extend(call(progress=part))
            except StagingError as exc:
                found.skipped[mode] = str(exc)

        # 1. copy-paste
        if index is None:
            found.skipped["copy-paste"] = "no catalog index given"
        else:
            run("copy-paste", 0.0, 0.7, lambda progress: self.copy_paste(
                rgb, k=k, index=index, mask=mask, product_type=product_type,
                product_size=product_size, progress=progress,
            ))  # fmt: skip
        # 2. the generated modes' category
        if category is None:
            inferred = next((s.source.get("product") for s in found.results), None) or {}
            category = inferred.get("product_type") or product_type
        # 3. vanilla, then the bandit's prompt
        generation = dict(placement=placement, seed=seed, backend=backend, mask=mask)
        run("vanilla", 0.7, 0.85, lambda progress: self.vanilla(
            rgb, category=category, progress=progress, **generation
        ))  # fmt: skip
        theme = self.suggest_theme(category)
        run("prompt", 0.85, 1.0, lambda progress: self.prompt(
            rgb, theme=theme, category=category, progress=progress, **generation
        ))  # fmt: skip
        if not found.results:
            raise StagingError(next(iter(found.skipped.values())))
        say(1.0, "done")
        return found
