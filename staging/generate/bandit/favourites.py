"""What a favourite teaches the theme bandit: the reward rule for results a person was shown.

The app shows prompt-staged results side by side and lets a person tick favourites. Each shown
result is one trial of its category's bandit: its theme was chosen for its placement, and a
favourite is a click (reward 1), any other result shown with it none (reward 0). The rule lives
here, not in a skin, so that every front end that collects favourites teaches the bandit the
same way; each caller passes the lesson to ``engine.record_feedback``.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Lesson(NamedTuple):
    """One feedback for :meth:`StagingEngine.record_feedback`, in its argument order."""

    category: str | None
    theme: str
    context: dict[str, Any]
    reward: float


def favourite_lesson(description: dict[str, Any], favourite: bool) -> Lesson | None:
    """The lesson of one shown result (``Staged.describe()``), or None when it teaches nothing:
    only a prompt-staged result with a theme does. Its context is its placement's size
    (``WxH``), the feature the bandit chose the theme for; the reward is 1 for a favourite."""
    source = description.get("source", {})
    theme, placement = source.get("theme"), source.get("placement") or {}
    if description.get("mode") != "prompt" or not theme:
        return None
    context = {"placement": f"{placement.get('width')}x{placement.get('height')}"}
    return Lesson(source.get("category"), theme, context, 1.0 if favourite else 0.0)
