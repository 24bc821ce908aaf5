"""The engine's prompt methods (mixed into :class:`~staging.engine.StagingEngine`): the
background themes and the per-category LinUCB bandits that choose among them
(:mod:`staging.generate.bandit`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from staging.generate import bandit
from staging.generate.prompts import library_path, load_library

if TYPE_CHECKING:
    from staging.generate.bandit import BanditRegistry, Suggestion
    from staging.generate.prompts import PromptLibrary


class PromptMethods:
    """The themes and the bandits, cached in the engine's model cache."""

    def prompt_library(self, path: str | os.PathLike | None = None) -> PromptLibrary:
        """The background themes: ``path``, else ``<state_dir>/prompts.yaml`` if the user made
        one, else the bundled themes; cached per file version (an edit is picked up)."""
        file = library_path(path, self.settings.state_dir)
        stamp = file.stat().st_mtime_ns if file.is_file() else 0
        return self.models.get("prompts", f"{file}@{stamp}", lambda: load_library(file))

    def prompt_bandits(self) -> BanditRegistry:
        """One LinUCB bandit per category, saved in ``<state_dir>/bandits/``."""
        folder = Path(os.fspath(self.settings.state_dir)).expanduser() / "bandits"
        return self.models.get("bandits", str(folder), lambda: bandit.BanditRegistry(folder))

    def suggest_prompt(
        self, category: str | None, context: dict[str, Any] | None = None,
        interests: dict[str, float] | list[str] | str | None = None, *, seed: int | None = None,
    ) -> Suggestion:  # fmt: skip
        """The bandit's theme of ``category`` for ``context``, its prompt personalised with
        ``interests``, and every theme's UCB score (:func:`staging.generate.bandit.suggest`)."""
        library = self.prompt_library()
        return bandit.suggest(
            library, self.prompt_bandits(), category, context, interests, seed=seed
        )

    def record_feedback(
        self, category: str | None, theme: str | int, context: dict[str, Any] | None, reward: float
    ) -> None:
        """Teach ``category``'s bandit that ``theme`` earned ``reward`` (1 click, 0 none) in
        ``context`` (pass ``suggestion.context``), and save its state."""
        library, bandits = self.prompt_library(), self.prompt_bandits()
        bandit.record_feedback(library, bandits, category, theme, context, reward)
