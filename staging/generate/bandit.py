"""Choosing a background theme per request: a LinUCB contextual bandit per product category.

Taboola's staging pipeline (Czapp et al. 2024) could not tell in advance which background
makes a given user click on a given product, so it let online learning decide: *one LinUCB per
item category*, choosing among a few predefined prompts, with the click probability depending
on the user (location, gender), the product (sub-category, colour) and the placement
(resolution). This module is that bandit:

* :class:`Context` and :class:`ContextFeaturizer` -- the request described as a fixed-length
  vector (user location, gender, interests; product sub-category and colour; placement size).
  Free-text values (locations, interests, sub-categories) are hashed into a few buckets with a
  stable hash, so new values need no vocabulary and the vector length never changes (a saved
  bandit stays usable); colours map to a dozen families and placements to orientation, aspect
  and size, which generalise across unseen values.
* :class:`LinUCB` -- the *disjoint* model of Li et al. (2010), one ridge regression per arm:
  ``A_a = ridge * I + sum x x^T``, ``b_a = sum r x``, ``theta_a = A_a^-1 b_a`` and the score
  ``theta_a . x + alpha * sqrt(x^T A_a^-1 x)``. ``A_a^-1`` is kept up to date with the
  Sherman-Morrison formula (O(d^2) per update instead of an O(d^3) inverse) and recomputed
  exactly every :data:`REFRESH_EVERY` updates so round-off cannot accumulate.
* :class:`PromptBandit` -- one category's bandit, arms named after its themes, thread-safe
  ``choose(context)`` / ``update(arm, context, reward)``, saved as JSON (written atomically).
* :class:`BanditRegistry` -- one bandit per category in a state folder, loaded lazily.
* :func:`suggest` -- what the engine calls: resolve the category, let the bandit choose a
  theme, add the AdBooster personalisation, fill the prompt.

Choices are deterministic given the state (ties go to the lowest arm index), so a bandit saved
and loaded makes exactly the same choices: the JSON stores floats with full precision.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from staging.compose.placement import get_placement
from staging.errors import StagingError
from staging.generate.personalize import (
    InterestsLike,
    Personalization,
    normalize_interests,
    personalize,
)

if TYPE_CHECKING:
    from staging.generate.prompts import PromptLibrary

DEFAULT_ALPHA = 0.25
"""Exploration weight. Li et al. derive ``1 + sqrt(ln(2/delta)/2)`` (~2.2) for a worst-case
bound; with click rates of a few percent that explores far too long. On the simulator of
``staging bench bandit`` 0.1-0.25 give the lowest regret and 1.0 about 30 % more; 0.25 keeps
some exploration in reserve for real traffic, which drifts and is noisier than the simulator."""
DEFAULT_RIDGE = 1.0
REFRESH_EVERY = 500
"""Recompute an arm's exact inverse after this many Sherman-Morrison updates."""
FORMAT = "staging-linucb"
FORMAT_VERSION = 1

# -- context ------------------------------------------------------------------------------------

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


# -- LinUCB -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Per-arm scores for one context: ``ucb = mean + alpha * width``."""

    ucb: np.ndarray
    mean: np.ndarray
    width: np.ndarray


class LinUCB:
    """Disjoint LinUCB (Li et al. 2010, Algorithm 1) over ``n_arms`` arms and ``dim`` features.

    Thread-safe: :meth:`choose`, :meth:`scores` and :meth:`update` hold one lock, so concurrent
    requests see a consistent model and no update is lost.
    """

    def __init__(
        self,
        n_arms: int,
        dim: int,
        alpha: float = DEFAULT_ALPHA,
        ridge: float = DEFAULT_RIDGE,
    ):
        if n_arms < 0 or dim < 1:
            raise StagingError(f"LinUCB needs dim >= 1 and n_arms >= 0, not {n_arms}, {dim}.")
        if not (math.isfinite(alpha) and alpha >= 0):
            raise StagingError(f"alpha must be a finite number >= 0, not {alpha}.")
        if not (math.isfinite(ridge) and ridge > 0):
            raise StagingError(f"ridge must be a finite number > 0, not {ridge}.")
        self.dim = int(dim)
        self.alpha = float(alpha)
        self.ridge = float(ridge)
        eye = np.eye(self.dim)
        self.A = np.repeat((self.ridge * eye)[None], n_arms, axis=0)
        self.A_inv = np.repeat((eye / self.ridge)[None], n_arms, axis=0)
        self.b = np.zeros((n_arms, self.dim))
        self.pulls = np.zeros(n_arms, dtype=np.int64)
        self.rewards = np.zeros(n_arms, dtype=np.float64)
        self._lock = threading.RLock()

    @property
    def n_arms(self) -> int:
        return len(self.b)

    def add_arm(self) -> int:
        """Append a fresh arm (a theme added to the YAML); returns its index."""
        with self._lock:
            eye = np.eye(self.dim)
            self.A = np.concatenate([self.A, (self.ridge * eye)[None]])
            self.A_inv = np.concatenate([self.A_inv, (eye / self.ridge)[None]])
            self.b = np.concatenate([self.b, np.zeros((1, self.dim))])
            self.pulls = np.append(self.pulls, 0)
            self.rewards = np.append(self.rewards, 0.0)
            return self.n_arms - 1

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.dim,) or not np.all(np.isfinite(x)):
            raise StagingError(
                f"A context vector must be {self.dim} finite numbers, got shape {x.shape}."
            )
        return x

    def theta(self) -> np.ndarray:
        """Each arm's ridge-regression weights, ``(n_arms, dim)``."""
        with self._lock:
            return np.einsum("kij,kj->ki", self.A_inv, self.b)

    def scores(self, x: np.ndarray) -> Scores:
        x = self._check_x(x)
        with self._lock:
            theta = np.einsum("kij,kj->ki", self.A_inv, self.b)
            mean = theta @ x
            width = np.sqrt(np.maximum(np.einsum("kij,i,j->k", self.A_inv, x, x), 0.0))
            return Scores(mean + self.alpha * width, mean, width)

    def choose(self, x: np.ndarray, allowed: Sequence[int] | None = None) -> int:
        """The arm with the highest upper confidence bound (lowest index on ties)."""
        ucb = self.scores(x).ucb
        if allowed is not None:
            mask = np.full(self.n_arms, -np.inf)
            mask[list(allowed)] = 0.0
            ucb = ucb + mask
        if not np.isfinite(ucb).any():
            raise StagingError("The bandit has no arm to choose from.")
        return int(np.argmax(ucb))

    def update(self, arm: int, x: np.ndarray, reward: float) -> None:
        """Add one observation: the reward (1 = click, 0 = no click) of ``arm`` in context x."""
        x = self._check_x(x)
        reward = _check_reward(reward)
        with self._lock:
            if not 0 <= arm < self.n_arms:
                raise StagingError(f"Arm {arm} does not exist (the bandit has {self.n_arms}).")
            self.A[arm] += np.outer(x, x)
            self.b[arm] += reward * x
            self.pulls[arm] += 1
            self.rewards[arm] += reward
            if self.pulls[arm] % REFRESH_EVERY == 0:
                self.A_inv[arm] = np.linalg.inv(self.A[arm])
            else:  # Sherman-Morrison: (A + x x^T)^-1 = A^-1 - (A^-1 x)(A^-1 x)^T / (1 + x^T A^-1 x)
                ax = self.A_inv[arm] @ x
                self.A_inv[arm] -= np.outer(ax, ax) / (1.0 + x @ ax)

    # -- persistence ----------------------------------------------------------------------------
    def arm_state(self, arm: int) -> dict[str, Any]:
        with self._lock:
            return {
                "pulls": int(self.pulls[arm]),
                "reward": float(self.rewards[arm]),
                "A": self.A[arm].tolist(),
                "A_inv": self.A_inv[arm].tolist(),
                "b": self.b[arm].tolist(),
            }

    def set_arm_state(self, arm: int, state: Mapping[str, Any]) -> None:
        d = self.dim
        A = np.asarray(state["A"], dtype=np.float64)
        A_inv = np.asarray(state["A_inv"], dtype=np.float64)
        b = np.asarray(state["b"], dtype=np.float64)
        if A.shape != (d, d) or A_inv.shape != (d, d) or b.shape != (d,):
            raise ValueError(f"arm state has the wrong shape for {d} features")
        if not (np.isfinite(A).all() and np.isfinite(A_inv).all() and np.isfinite(b).all()):
            raise ValueError("arm state has non-finite numbers")
        with self._lock:
            self.A[arm], self.A_inv[arm], self.b[arm] = A, A_inv, b
            self.pulls[arm] = int(state.get("pulls", 0))
            self.rewards[arm] = float(state.get("reward", 0.0))


def _check_reward(reward: Any) -> float:
    try:
        value = float(reward)
    except (TypeError, ValueError):
        raise StagingError(f"A reward is a number (1 = click, 0 = none), not {reward!r}.") from None
    if not math.isfinite(value):
        raise StagingError(f"A reward must be finite, not {reward!r}.")
    return value


# -- one category -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """What the bandit picked and why: ``scores`` are the upper confidence bounds, ``means``
    the expected rewards (estimated click rates), per arm name."""

    arm: int
    name: str
    scores: dict[str, float]
    means: dict[str, float]


class PromptBandit:
    """The bandit of one category: a :class:`LinUCB` whose arms are named after its themes.

    Arms are matched by name, so reordering the YAML keeps what was learned; a new theme gets
    a fresh arm (:meth:`sync_arms`); a removed theme keeps its statistics in the file but is no
    longer chosen once callers pass the current names to :meth:`choose`.
    """

    def __init__(
        self,
        arms: Sequence[str],
        category: str = "default",
        alpha: float = DEFAULT_ALPHA,
        ridge: float = DEFAULT_RIDGE,
        featurizer: ContextFeaturizer | None = None,
    ):
        self.category = category
        self.featurizer = featurizer or ContextFeaturizer()
        self.names: list[str] = []
        self.model = LinUCB(0, self.featurizer.dim, alpha=alpha, ridge=ridge)
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self.sync_arms(arms)

    @property
    def alpha(self) -> float:
        return self.model.alpha

    @property
    def updates(self) -> int:
        return int(self.model.pulls.sum())

    def sync_arms(self, names: Sequence[str]) -> None:
        """Add an arm for every name not yet known (in the given order)."""
        with self._lock:
            for name in names:
                if not isinstance(name, str) or not name:
                    raise StagingError(f"Arm names must be non-empty text, not {name!r}.")
                if name not in self.names:
                    self.model.add_arm()
                    self.names.append(name)

    def index(self, arm: str | int) -> int:
        """The index of arm ``arm`` (a name or an index)."""
        with self._lock:
            if isinstance(arm, str):
                if arm in self.names:
                    return self.names.index(arm)
            elif isinstance(arm, (int, np.integer)) and 0 <= int(arm) < len(self.names):
                return int(arm)
            raise StagingError(
                f"Unknown arm {arm!r} for category {self.category!r}; arms: "
                f"{', '.join(self.names)}."
            )

    def choose(self, context: ContextLike, arms: Sequence[str] | None = None) -> Choice:
        """The arm to show in ``context`` (among ``arms`` only, when given)."""
        x = self.featurizer.transform(context)
        with self._lock:
            allowed = None if arms is None else [self.index(a) for a in arms]
            if allowed is not None and not allowed:
                raise StagingError(f"No arms to choose from for category {self.category!r}.")
            scores = self.model.scores(x)
            ucb = scores.ucb.copy()
            if allowed is not None:
                mask = np.full(len(ucb), -np.inf)
                mask[allowed] = 0.0
                ucb += mask
            best = int(np.argmax(ucb))
            keep = range(len(self.names)) if allowed is None else allowed
            return Choice(
                arm=best,
                name=self.names[best],
                scores={self.names[i]: float(scores.ucb[i]) for i in keep},
                means={self.names[i]: float(scores.mean[i]) for i in keep},
            )

    def update(self, arm: str | int, context: ContextLike, reward: float) -> None:
        """Learn from one outcome: ``reward`` (1 = click, 0 = no click) of ``arm`` in context."""
        x = self.featurizer.transform(context)
        with self._lock:
            self.model.update(self.index(arm), x, reward)

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "category": self.category,
                "alpha": self.model.alpha,
                "ridge": self.model.ridge,
                "features": self.featurizer.spec,
                "updates": self.updates,
                "arms": [
                    {"name": name, **self.model.arm_state(i)} for i, name in enumerate(self.names)
                ],
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], alpha: float | None = None) -> PromptBandit:
        """Rebuild a bandit from :meth:`to_dict` output (``alpha`` overrides the saved one)."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise StagingError("Not a saved prompt bandit (format is not 'staging-linucb').")
        if data.get("version") != FORMAT_VERSION:
            raise StagingError(f"Unsupported bandit state version {data.get('version')!r}.")
        try:
            featurizer = ContextFeaturizer.from_spec(data["features"])
            arms = data["arms"]
            bandit = cls(
                [a["name"] for a in arms],
                category=str(data.get("category", "default")),
                alpha=float(data["alpha"] if alpha is None else alpha),
                ridge=float(data["ridge"]),
                featurizer=featurizer,
            )
            for i, arm in enumerate(arms):
                bandit.model.set_arm_state(i, arm)
        except (KeyError, TypeError, ValueError) as exc:
            raise StagingError(f"Damaged bandit state: {exc!r}.") from None
        return bandit

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state as JSON, atomically (a temporary file renamed into place), so a
        crash or a concurrent reader never sees half a file."""
        target = Path(os.fspath(path))
        with self._save_lock:  # snapshots are written in the order they were taken
            text = json.dumps(self.to_dict(), separators=(",", ":"))
            _atomic_write_text(target, text)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, alpha: float | None = None) -> PromptBandit:
        file = Path(os.fspath(path))
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StagingError(f"No bandit state at {file}.") from None
        except (OSError, ValueError) as exc:
            raise StagingError(
                f"Cannot read the bandit state {file} ({exc}); delete it to start learning again."
            ) from None
        try:
            return cls.from_dict(data, alpha=alpha)
        except StagingError as exc:
            raise StagingError(f"{file}: {exc} Delete it to start learning again.") from None


def _atomic_write_text(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- every category -----------------------------------------------------------------------------


class BanditRegistry:
    """One :class:`PromptBandit` per category, kept in ``folder/<category>.json``.

    Bandits load on first use and are shared by every thread of the process. With
    ``folder=None`` nothing is saved (tests, dry runs). Several *processes* updating one
    folder would each keep their own copy and the last save would win, so let one process (the
    app or a feedback worker) own the updates.
    """

    def __init__(self, folder: str | os.PathLike | None, alpha: float | None = None):
        self.folder = Path(os.fspath(folder)).expanduser() if folder is not None else None
        self.alpha = alpha
        self._bandits: dict[str, PromptBandit] = {}
        self._lock = threading.Lock()

    def path(self, category: str) -> Path | None:
        if self.folder is None:
            return None
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", category):
            raise StagingError(f"Category name {category!r} cannot name a state file.")
        return self.folder / f"{category}.json"

    def bandit(self, category: str, arms: Sequence[str]) -> PromptBandit:
        """The bandit of ``category`` with at least the arms ``arms``."""
        with self._lock:
            found = self._bandits.get(category)
            if found is None:
                file = self.path(category)
                if file is not None and file.is_file():
                    found = PromptBandit.load(file, alpha=self.alpha)
                else:
                    found = PromptBandit(
                        arms, category, alpha=DEFAULT_ALPHA if self.alpha is None else self.alpha
                    )
                self._bandits[category] = found
        found.sync_arms(arms)
        return found

    def save(self, category: str) -> Path | None:
        file = self.path(category)
        with self._lock:
            bandit = self._bandits.get(category)
        if file is None or bandit is None:
            return None
        return bandit.save(file)


# -- what the engine calls ----------------------------------------------------------------------


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
