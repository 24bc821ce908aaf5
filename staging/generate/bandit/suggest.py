"""What the engine calls: :func:`suggest` a theme's prompt for a request, and
:func:`record_feedback` to teach the category's bandit what a shown theme earned.

:func:`suggest` resolves the category, lets its bandit choose a theme, adds the AdBooster
personalisation and fills the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from staging.generate.bandit.context import Context, ContextLike, parse_context
from staging.generate.bandit.state import BanditRegistry, PromptBandit
from staging.generate.personalize import InterestsLike, Personalization, personalize

if TYPE_CHECKING:
    from staging.generate.prompts import PromptLibrary


@dataclass(frozen=True)
class Suggestion:
    """The bandit's suggestion for one request, ready for the generator.

    Attributes:
        category: the library category used (``default`` when the product's was unknown).
        theme: the chosen theme's name; ``arm`` its index in the category's theme list.
        prompt, negative: the filled prompt (personalised) and negative prompt.
        scores: each theme's upper confidence bound, the number the bandit maximised.
        means: each theme's estimated reward (click rate) without the exploration bonus.
        personalization: the AdBooster fragment and the interests it came from.
        context: the parsed context (pass it back to ``record_feedback``).
        updates: how many outcomes the category's bandit has learned from so far.
    """

    category: str
    theme: str
    arm: int
    prompt: str
    negative: str
    scores: dict[str, float]
    means: dict[str, float]
    personalization: Personalization
    context: Context
    updates: int = 0

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "category": self.category,
            "theme": self.theme,
            "arm": self.arm,
            "prompt": self.prompt,
            "negative": self.negative,
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "means": {k: round(v, 6) for k, v in self.means.items()},
            "interests": [list(p) for p in self.personalization.interests],
            "context": self.context.describe(),
            "updates": self.updates,
        }


def _product_noun(text: str | None) -> str | None:
    """ "Table, outdoor" -> "table": the catalog's words for the product, minus qualifiers."""
    if not text:
        return None
    noun = " ".join(text.split(",")[0].lower().split())
    return noun or None


def suggest(
    library: PromptLibrary,
    registry: BanditRegistry,
    category: str | None,
    context: ContextLike = None,
    interests: InterestsLike = None,
    *,
    seed: int | None = None,
) -> Suggestion:
    """Choose a theme for ``category`` in ``context`` and build its prompt.

    ``interests`` (or ``context["interests"]``) both feed the bandit's features and become the
    AdBooster fragment (deterministic, or sampled by weight with ``seed``).
    """
    ctx = parse_context(context, interests)
    key = library.resolve(category if category is not None else ctx.category)
    themes = library.themes(key)
    names = [t.name for t in themes]
    bandit = registry.bandit(key, names)
    choice = bandit.choose(ctx, arms=names)
    extra = personalize(ctx.interests, library.interests, seed=seed)
    prompt, negative = library.fill(
        key,
        choice.name,
        product=_product_noun(ctx.category) or _product_noun(category),
        colour=ctx.colour,
        extra=extra.fragment,
    )
    return Suggestion(
        category=key,
        theme=choice.name,
        arm=names.index(choice.name),
        prompt=prompt,
        negative=negative,
        scores=choice.scores,
        means=choice.means,
        personalization=extra,
        context=ctx,
        updates=bandit.updates,
    )


def record_feedback(
    library: PromptLibrary,
    registry: BanditRegistry,
    category: str | None,
    theme: str | int,
    context: ContextLike,
    reward: float,
    interests: InterestsLike = None,
) -> PromptBandit:
    """Teach ``category``'s bandit that ``theme`` earned ``reward`` in ``context``, and save.

    Pass the same context (and interests) the suggestion was made for, e.g.
    ``suggestion.context``: the bandit learns what worked *for that context*.
    """
    ctx = parse_context(context, interests)
    key = library.resolve(category if category is not None else ctx.category)
    names = [t.name for t in library.themes(key)]
    name = library.theme(key, theme).name  # StagingError for a theme the category lacks
    bandit = registry.bandit(key, names)
    bandit.update(name, ctx, reward)
    registry.save(key)
    return bandit
