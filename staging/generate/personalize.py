"""AdBooster-style personalisation: a user's interests become part of the background prompt.

AdBooster (Shilova et al. 2023, arXiv 2309.11507) conditions Stable Diffusion outpainting on a
*user representation*, an interest distribution such as ``{"beach": 0.6, "minimalism": 0.4}``,
so the product is shown in a scene that matches what the user cares about; the gain is measured
as CLIP similarity between the creative and the user's interests (``staging eval clip-score``).

Here the distribution is turned into a prompt fragment that is appended to the chosen theme:

* **deterministic** (``seed=None``): interests ordered by weight (Stable Diffusion's text
  encoder weighs early tokens most, so the heaviest interest comes first); the main interest is
  stated plainly, lighter ones as "with elements of" / "with a hint of"; interests under
  ``min_weight`` are dropped, at most ``top_k`` kept. The same distribution always gives the
  same fragment, which suits caching one generated image per (product, theme, user segment).
* **sampled** (``seed=int``): ``top_k`` interests are drawn without replacement with
  probability proportional to weight, and the first draw leads. Over many users (seeds) a
  60/40 beach/minimalism user sees a beach-led background 60 % of the time, so variety follows
  the distribution instead of always showing the top interest.

Each interest maps to a scene fragment from the prompt library (``interests:`` in
``prompts.yaml``); an interest the library does not know is used as it is
("``sailing`` themed decor").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from staging.errors import StagingError

InterestsLike = Mapping[str, float] | Sequence[str] | str | None
"""A distribution ``{"beach": 0.6, ...}``, a list of interests (equal weights), or the CLI's
``"beach:0.6,minimalism:0.4"`` string."""

_WORD = re.compile(r"[^a-z0-9 &'+-]+")


def _interest_key(name: object) -> str:
    if not isinstance(name, str):
        raise StagingError(f"Interest names must be text, not {name!r}.")
    key = " ".join(_WORD.sub(" ", name.lower().replace("_", " ")).split())
    if not key:
        raise StagingError(f"Interest {name!r} has no letters or digits.")
    return key


def normalize_interests(interests: InterestsLike) -> dict[str, float]:
    """The interests as a probability distribution (weights sum to 1), heaviest first.

    Accepts a mapping of weights (any non-negative scale: counts, scores), a list of names
    (equal weights) or ``"beach:0.6,minimalism:0.4"`` (a name without ``:w`` weighs 1).
    Repeated names add up. Raises :class:`StagingError` for negative, non-finite or all-zero
    weights, so a broken user profile is noticed rather than staged as "no interests".
    """
    if interests is None:
        return {}
    pairs: list[tuple[str, float]] = []
    if isinstance(interests, str):
        for item in filter(None, (p.strip() for p in interests.split(","))):
            name, _, weight = item.partition(":")
            try:
                pairs.append((name, float(weight) if weight.strip() else 1.0))
            except ValueError:
                raise StagingError(
                    f"Interest weight {weight!r} in {item!r} is not a number "
                    "(write e.g. beach:0.6,minimalism:0.4)."
                ) from None
    elif isinstance(interests, Mapping):
        for name, weight in interests.items():
            try:
                pairs.append((name, float(weight)))
            except (TypeError, ValueError):
                raise StagingError(
                    f"Interest {name!r} has a non-numeric weight {weight!r}."
                ) from None
    elif isinstance(interests, Sequence):
        pairs = [(name, 1.0) for name in interests]
    else:
        raise StagingError(
            f"Interests must be a mapping name -> weight, a list of names or a "
            f"'name:weight,...' string, not {type(interests).__name__}."
        )
    totals: dict[str, float] = {}
    for name, weight in pairs:
        if not math.isfinite(weight) or weight < 0:
            raise StagingError(f"Interest {name!r} has weight {weight}; weights must be >= 0.")
        key = _interest_key(name)
        totals[key] = totals.get(key, 0.0) + weight
    total = sum(totals.values())
    if not totals:
        return {}
    if total <= 0:
        raise StagingError("All interest weights are zero; give at least one a positive weight.")
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return {name: weight / total for name, weight in ordered if weight > 0}


@dataclass(frozen=True)
class Personalization:
    """The prompt fragment and the interests it was built from.

    Attributes:
        fragment: text to append to the theme prompt ("" when there are no interests).
        interests: ``(name, normalised weight)`` of the interests used, leading one first.
        sampled: whether they were drawn at random (with ``seed``) or taken by weight.
    """

    fragment: str
    interests: tuple[tuple[str, float], ...] = ()
    sampled: bool = False

    @property
    def primary(self) -> str | None:
        """The interest that leads the fragment (the most visible one in the image)."""
        return self.interests[0][0] if self.interests else None

    def __bool__(self) -> bool:
        return bool(self.fragment)


def describe_interest(name: str, vocabulary: Mapping[str, str] | None = None) -> str:
    """The scene fragment for one interest: the library's, else ``"<name> themed decor"``."""
    vocabulary = vocabulary or {}
    return vocabulary.get(name) or f"{name} themed decor"


def _qualified(text: str, weight: float, lead: bool) -> str:
    """Lighter interests get a softer wording and only their first clause, so they colour the
    scene without taking it over (or the text encoder's 77 tokens)."""
    if lead:
        return text
    text = text.split(",")[0].strip()
    if weight >= 0.5:
        return f"with {text}"
    if weight >= 0.25:
        return f"with elements of {text}"
    return f"with a hint of {text}"


def personalize(
    interests: InterestsLike,
    vocabulary: Mapping[str, str] | None = None,
    *,
    seed: int | None = None,
    top_k: int = 2,
    min_weight: float = 0.1,
) -> Personalization:
    """Turn an interest distribution into a prompt fragment (see the module docstring).

    Args:
        interests: the distribution (see :func:`normalize_interests`).
        vocabulary: interest -> scene fragment (a :class:`PromptLibrary`'s ``interests``).
        seed: None for the deterministic fragment; an int to sample interests by weight.
        top_k: at most this many interests go into the fragment (each costs ~15 of the text
            encoder's 77 tokens, so 2 leaves room for the theme).
        min_weight: deterministic mode drops interests lighter than this (the top one stays).
    """
    if top_k < 1:
        raise StagingError(f"top_k must be at least 1, not {top_k}.")
    dist = normalize_interests(interests)
    if not dist:
        return Personalization("")
    names = list(dist)
    if seed is None:
        chosen = [n for n in names if dist[n] >= min_weight][:top_k] or names[:1]
    else:
        rng = np.random.default_rng(seed)
        p = np.array([dist[n] for n in names], dtype=np.float64)
        k = min(top_k, len(names))
        picks = rng.choice(len(names), size=k, replace=False, p=p / p.sum())
        chosen = [names[int(i)] for i in picks]
    vocab = {_interest_key(k): v for k, v in (vocabulary or {}).items()}
    parts = [
        _qualified(describe_interest(name, vocab), dist[name], lead=i == 0)
        for i, name in enumerate(chosen)
    ]
    return Personalization(
        fragment=", ".join(parts),
        interests=tuple((name, dist[name]) for name in chosen),
        sampled=seed is not None,
    )
