"""LinUCB, the *disjoint* model of Li et al. (2010): one ridge regression per arm.

``A_a = ridge * I + sum x x^T``, ``b_a = sum r x``, ``theta_a = A_a^-1 b_a`` and the score
``theta_a . x + alpha * sqrt(x^T A_a^-1 x)``. ``A_a^-1`` is kept up to date with the
Sherman-Morrison formula (O(d^2) per update instead of an O(d^3) inverse) and recomputed
exactly every :data:`REFRESH_EVERY` updates so round-off cannot accumulate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from staging.errors import StagingError

DEFAULT_ALPHA = 0.25
"""Exploration weight. Li et al. derive ``1 + sqrt(ln(2/delta)/2)`` (~2.2) for a worst-case
bound; with click rates of a few percent that explores far too long. Smaller weights give less
regret on the simulator of ``staging bench bandit`` (BENCHMARKS.md); 0.25 keeps some
exploration in reserve for real traffic, which drifts and is noisier than the simulator."""
DEFAULT_RIDGE = 1.0
REFRESH_EVERY = 500
"""Recompute an arm's exact inverse after this many Sherman-Morrison updates."""


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
