"""The bandit's context: what is known about one ad request, as a fixed-length vector.

The vector covers the user (location, gender, interests), the product (sub-category and
colour) and the placement size. Free-text values (locations, interests, sub-categories) are
hashed into a few buckets with a stable hash, so new values need no vocabulary and the vector
length never changes (a saved bandit stays usable); colours map to a dozen families and
placements to orientation, aspect and size, which generalise across unseen values.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from staging.compose.placement import get_placement
from staging.errors import StagingError
from staging.generate.personalize import InterestsLike, normalize_interests

_GENDERS = {
    "female": {"female", "f", "woman", "women", "w", "girl", "femme"},
    "male": {"male", "m", "man", "men", "boy", "homme"},
}

COLOUR_FAMILIES: dict[str, tuple[str, ...]] = {
    "white": ("white", "offwhite", "ivory", "snow", "cream", "alabaster"),
    "black": ("black", "anthracite", "charcoal", "ebony", "jet"),
    "grey": ("grey", "gray", "silver", "graphite", "slate", "stone"),
    "metal": (
        "stainless",
        "steel",
        "chrome",
        "nickel",
        "metal",
        "aluminium",
        "aluminum",
        "brass",
        "copper",
        "bronze",
        "gold",
        "golden",
    ),
    "wood": (
        "wood",
        "wooden",
        "oak",
        "walnut",
        "pine",
        "birch",
        "beech",
        "ash",
        "teak",
        "bamboo",
        "acacia",
        "rattan",
        "cane",
        "wicker",
        "veneer",
        "stained",
        "stain",
    ),
    "brown": ("brown", "tan", "cognac", "chocolate", "caramel", "coffee", "mocha", "rust"),
    "beige": ("beige", "sand", "natural", "linen", "taupe", "oatmeal", "khaki", "ecru", "nude"),
    "red": (
        "red",
        "pink",
        "burgundy",
        "orange",
        "terracotta",
        "coral",
        "rose",
        "wine",
        "purple",
        "lilac",
        "violet",
        "magenta",
    ),
    "green": ("green", "olive", "sage", "mint", "emerald", "forest", "lime"),
    "blue": ("blue", "navy", "turquoise", "teal", "petrol", "indigo", "aqua", "cyan"),
    "yellow": ("yellow", "mustard", "ochre", "lemon", "saffron"),
    "multi": (
        "multicolour",
        "multicolor",
        "multi",
        "patterned",
        "pattern",
        "print",
        "striped",
        "glass",
        "clear",
        "transparent",
    ),
}
_COLOUR_WORD = {word: family for family, words in COLOUR_FAMILIES.items() for word in words}


def parse_placement(value: Any) -> tuple[int, int] | None:
    """``(width, height)`` of a placement, read by the one placement table
    (:func:`staging.compose.placement.get_placement`): a name (``square``, ``landscape``,
    ``mrec``...), ``"WxH"``, an aspect (``"4:5"``) or ``(w, h)``. The bandit learns on the sizes
    that are served; None for no placement."""
    if value is None or value == "":
        return None
    try:
        return get_placement(value).size
    except StagingError as exc:
        raise ValueError(f"placement: {exc}") from None


class Context(BaseModel):
    """What is known about one ad request; every field is optional.

    Attributes:
        location: the user's country, region or city (free text).
        gender: ``female``, ``male``; anything else counts as "other", None as unknown.
        interests: the user's interest distribution (see
            :func:`~staging.generate.personalize.normalize_interests`).
        category: the product's (sub-)category as the catalog says it ("Swivel chair").
        colour: the product's colour as the catalog says it ("Black-brown"); ``color`` works.
        placement: the ad slot's size, ``(w, h)`` or ``"1080x1350"`` / ``"4:5"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    location: str | None = None
    gender: str | None = None
    interests: dict[str, float] | None = None
    category: str | None = None
    colour: str | None = Field(None, alias="color")
    placement: tuple[int, int] | None = None

    @field_validator("location", "gender", "category", "colour", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = " ".join(value.split())
            return value or None
        return value

    @field_validator("interests", mode="before")
    @classmethod
    def _interests(cls, value: Any) -> Any:
        try:
            return normalize_interests(value) or None
        except StagingError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("placement", mode="before")
    @classmethod
    def _placement(cls, value: Any) -> Any:
        return parse_placement(value)

    def describe(self) -> dict[str, Any]:
        """JSON-ready, without the unset fields."""
        out = self.model_dump(exclude_none=True)
        if self.placement is not None:
            out["placement"] = f"{self.placement[0]}x{self.placement[1]}"
        return out


ContextLike = Context | Mapping[str, Any] | None


def parse_context(context: ContextLike, interests: InterestsLike = None) -> Context:
    """A :class:`Context` from a mapping (or None), with ``interests`` merged in when given.

    Raises :class:`StagingError` naming the bad field (an unknown key, a negative interest
    weight, an unreadable placement), so a request with a broken context fails loudly instead
    of teaching the bandit nonsense.
    """
    if context is None:
        data: dict[str, Any] = {}
    elif isinstance(context, Context):
        data = context.model_dump(exclude_none=True)
    elif isinstance(context, Mapping):
        data = dict(context)
    else:
        raise StagingError(
            f"A context is a mapping such as {{'gender': 'female', 'placement': '1080x1350'}}, "
            f"not {type(context).__name__}."
        )
    if interests is not None:
        data["interests"] = interests
    try:
        return Context.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "context"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field (known: " + ", ".join(_CONTEXT_FIELDS) + ")"
            problems.append(f"{where}: {message}")
        raise StagingError("Invalid context: " + "; ".join(problems)) from None


_CONTEXT_FIELDS = ("location", "gender", "interests", "category", "colour", "placement")


def _bucket(group: str, value: str, buckets: int) -> int:
    """A hash that is the same in every process (Python's own ``hash`` is salted per run)."""
    digest = hashlib.blake2b(f"{group}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def colour_families(colour: str | None) -> dict[str, float]:
    """``"Black-brown"`` -> ``{"black": 0.5, "brown": 0.5}``; unknown words -> ``other``."""
    if not colour:
        return {}
    words = re.findall(r"[a-z]+", colour.lower().replace("off-white", "offwhite"))
    found = [_COLOUR_WORD[w] for w in words if w in _COLOUR_WORD]
    if not found:
        return {"other": 1.0}
    share = 1.0 / len(found)
    out: dict[str, float] = {}
    for family in found:
        out[family] = out.get(family, 0.0) + share
    return out


class ContextFeaturizer:
    """:class:`Context` -> float64 vector of fixed length :attr:`dim`.

    Groups: bias (1), gender (female, male, other), location (hashed), interests (hashed,
    weighted by the distribution), product sub-category (hashed), colour family (12 + other),
    placement (portrait / square / landscape, log aspect, log area). A missing field leaves its
    group at zero, so "unknown" is its own context rather than a guess.
    """

    def __init__(
        self, location_buckets: int = 8, interest_buckets: int = 12, product_buckets: int = 6
    ):
        self.location_buckets = int(location_buckets)
        self.interest_buckets = int(interest_buckets)
        self.product_buckets = int(product_buckets)
        self.groups: list[tuple[str, int]] = [
            ("bias", 1),
            ("gender", 3),
            ("location", self.location_buckets),
            ("interests", self.interest_buckets),
            ("product", self.product_buckets),
            ("colour", len(COLOUR_FAMILIES) + 1),
            ("placement", 5),
        ]
        self.offsets: dict[str, int] = {}
        start = 0
        for name, size in self.groups:
            self.offsets[name] = start
            start += size
        self.dim = start

    @property
    def spec(self) -> dict[str, Any]:
        """What a saved bandit records, to refuse a state built with other features."""
        return {"version": 1, "groups": [[name, size] for name, size in self.groups]}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ContextFeaturizer:
        sizes = dict((name, size) for name, size in spec.get("groups", []))
        made = cls(sizes.get("location", 8), sizes.get("interests", 12), sizes.get("product", 6))
        if made.spec != {"version": spec.get("version"), "groups": spec.get("groups")}:
            raise StagingError(f"Unsupported context features {spec!r}.")
        return made

    def names(self) -> list[str]:
        """A label per dimension (for inspecting learned weights)."""
        out = ["bias", "gender=female", "gender=male", "gender=other"]
        out += [f"location#{i}" for i in range(self.location_buckets)]
        out += [f"interests#{i}" for i in range(self.interest_buckets)]
        out += [f"product#{i}" for i in range(self.product_buckets)]
        out += [f"colour={c}" for c in (*COLOUR_FAMILIES, "other")]
        out += ["placement=portrait", "placement=square", "placement=landscape"]
        out += ["placement.log_aspect", "placement.log_area"]
        return out

    def __call__(self, context: ContextLike) -> np.ndarray:
        return self.transform(context)

    def transform(self, context: ContextLike) -> np.ndarray:
        ctx = context if isinstance(context, Context) else parse_context(context)
        x = np.zeros(self.dim, dtype=np.float64)
        o = self.offsets
        x[o["bias"]] = 1.0
        if ctx.gender is not None:
            g = ctx.gender.lower()
            slot = next((i for i, k in enumerate(_GENDERS) if g in _GENDERS[k]), 2)
            x[o["gender"] + slot] = 1.0
        if ctx.location:
            key = " ".join(ctx.location.lower().split())
            x[o["location"] + _bucket("location", key, self.location_buckets)] = 1.0
        for name, weight in (ctx.interests or {}).items():
            x[o["interests"] + _bucket("interest", name, self.interest_buckets)] += weight
        if ctx.category:
            key = " ".join(re.findall(r"[a-z]+", ctx.category.lower()))
            x[o["product"] + _bucket("product", key, self.product_buckets)] = 1.0
        families = [*COLOUR_FAMILIES, "other"]
        for family, share in colour_families(ctx.colour).items():
            x[o["colour"] + families.index(family)] = share
        if ctx.placement is not None:
            w, h = ctx.placement
            aspect = w / h
            slot = 0 if aspect < 1 / 1.05 else (2 if aspect > 1.05 else 1)
            x[o["placement"] + slot] = 1.0
            x[o["placement"] + 3] = float(np.clip(math.log(aspect) / math.log(4.0), -1, 1))
            x[o["placement"] + 4] = float(np.clip(math.log2(w * h / 1e6) / 3.0, -1, 1))
        return x
