"""One category's bandit (:class:`PromptBandit`) and one per category (:class:`BanditRegistry`).

A :class:`PromptBandit` is a :class:`~staging.generate.bandit.linucb.LinUCB` whose arms are
named after the category's themes, thread-safe, saved as JSON (written atomically, so a crash
or a concurrent reader never sees half a file). The registry keeps one per category in a state
folder and loads them lazily.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staging.errors import StagingError
from staging.generate.bandit.context import ContextFeaturizer, ContextLike
from staging.generate.bandit.linucb import DEFAULT_ALPHA, DEFAULT_RIDGE, LinUCB
from staging.io import atomic_write

FORMAT = "staging-linucb"
FORMAT_VERSION = 1


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
            data = json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")
            atomic_write(target, lambda fh: fh.write(data))
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
