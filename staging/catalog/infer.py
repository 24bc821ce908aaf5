"""What a bare product photo is, read from the catalog it is staged with.

A designer uploads a photo, with no type and no size. Copy-paste needs both: the kind decides
which scenes' objects the product may replace, the size how big it stands in a room (without
one it took the old object's size: chairs as big as a bed). No classifier weights are needed:
the catalog already holds product shots with their CSV ``type`` and ``size``. The nearest
un-staged shots (by the index's own embedding) vote for a kind, each with its similarity;
the size is that of the winning kind's neighbours, their similarity-weighted median width. The
share of the vote the kind won is reported as its confidence, so the user sees how sure it is
and can correct it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from staging.catalog.index import Hit
from staging.compose.scale import width_from_size

NEIGHBOURS = 5
"""How many nearest product shots vote: a common k for nearest-neighbour votes, not fitted."""


@dataclass(frozen=True)
class InferredProduct:
    """A product's kind and size as the catalog's nearest product shots say.

    Attributes:
        type: the winning ``type`` (as the catalog spells it).
        size: the catalog ``size`` text of the winning kind's median-width neighbour, or None
            when none of them has a length.
        confidence: the share of the similarity-weighted vote ``type`` won (0-1).
        neighbours: the ids of the shots that voted, nearest first.
    """

    type: str
    size: str | None
    confidence: float
    neighbours: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """JSON-ready, for a result's ``source``."""
        return {
            "product_type": self.type,
            "product_size": self.size,
            "inferred_from": "catalog",
            "confidence": round(self.confidence, 3),
            "neighbours": list(self.neighbours),
        }


def infer_product(shots: Sequence[Hit]) -> InferredProduct | None:
    """The kind and size the un-staged ``shots`` (nearest first) vote for; None when none of
    them has a ``type``.

    A shot's vote is its cosine similarity (negative ones count as nothing). Kinds are compared
    case-insensitively and reported as the nearest voter spelled them.
    """
    votes: dict[str, float] = {}
    spelling: dict[str, str] = {}
    typed = []
    for hit in shots:
        kind = str(hit.metadata.get("type") or "").strip()
        if not kind:
            continue
        key = kind.lower()
        weight = max(0.0, float(hit.score))
        votes[key] = votes.get(key, 0.0) + weight
        spelling.setdefault(key, kind)
        typed.append((key, weight, hit))
    if not typed:
        return None
    winner = max(votes, key=lambda key: (votes[key], -_first(typed, key)))
    total = sum(votes.values())
    confidence = votes[winner] / total if total > 0 else 1.0 / len(votes)
    sized = [
        (width, weight, hit.metadata.get("size"))
        for key, weight, hit in typed
        if key == winner and (width := width_from_size(hit.metadata.get("size"))) is not None
    ]
    return InferredProduct(
        type=spelling[winner],
        size=_weighted_median(sized),
        confidence=float(confidence),
        neighbours=[hit.id for _, _, hit in typed],
    )


def _first(typed: list, key: str) -> int:
    """Rank of the nearest voter for ``key``: breaks a tie towards the nearer shot."""
    return next(i for i, (k, _, _) in enumerate(typed) if k == key)


def _weighted_median(sized: list[tuple[float, float, str]]) -> str | None:
    """The size text whose width is the similarity-weighted median of ``sized``."""
    if not sized:
        return None
    sized = sorted(sized, key=lambda item: item[0])
    weights = np.array([max(weight, 1e-6) for _, weight, _ in sized])
    half = np.searchsorted(np.cumsum(weights), weights.sum() / 2)
    return sized[int(min(half, len(sized) - 1))][2]
