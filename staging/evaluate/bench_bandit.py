"""``staging bench bandit``: does the contextual bandit pick better backgrounds than simpler rules?

Real click data is not shipped, so the comparison runs on a simulator with a *planted* truth:
each theme (arm) has a logistic click model over the same context features the bandit sees,
``P(click | x, arm) = sigmoid(logit(base_ctr) + x . theta_arm)``, with ``theta_arm`` drawn at
random (so which theme is best depends on the user, the product and the placement, as Taboola
assumed). Contexts are drawn from plausible pools (cities, genders, interest mixes, chair
sub-categories, colours, ad sizes) and featurised by the real
:class:`~staging.generate.bandit.ContextFeaturizer`.

Policies, all fed the same contexts and the same random click draws (common random numbers,
so differences are the policies', not the dice's):

* ``linucb`` -- :class:`~staging.generate.bandit.LinUCB`, the engine's bandit;
* ``epsilon-greedy`` -- context-free: the best average so far, a random theme with prob. eps;
* ``random`` -- a uniformly random theme (Taboola's control arm).

Regret is the *expected* regret, ``sum_t max_a p_a(x_t) - p_{chosen}(x_t)`` from the planted
probabilities, which is far less noisy than counting clicks. The ``best-fixed`` row is an
oracle reference, not a policy: always showing the single theme with the best average click
rate, i.e. the best any context-free method could do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from staging.errors import StagingError
from staging.generate.bandit import DEFAULT_ALPHA, ContextFeaturizer, LinUCB, parse_context

POLICIES = ("linucb", "epsilon-greedy", "random")
DEFAULT_ARMS = ("scandi_living", "reading_nook", "dining_room", "studio_minimal")

_LOCATIONS = ["Berlin", "London", "Paris", "New York", "Austin", "Madrid", "Milan",
              "Stockholm", "Tokyo", "Sao Paulo", "Sydney", "Toronto"]  # fmt: skip
_GENDERS = ["female", "male", None, "non-binary"]
_INTERESTS = ["beach", "minimalism", "nature", "scandinavian", "industrial", "luxury", "cozy",
              "vintage", "bohemian", "urban", "books", "gardening"]  # fmt: skip
_PRODUCTS = ["chair", "armchair", "swivel chair", "stool", "dining chair"]
_COLOURS = ["White", "Black", "Grey", "Oak", "Beige", "Green", "Blue", "Black-brown", None]
_PLACEMENTS = ["300x250", "1080x1080", "1080x1350", "1080x1920", "1200x628", "728x90"]


def sample_contexts(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """``n`` request contexts from skewed pools (some cities, sizes and colours are common)."""

    def skewed(k: int) -> np.ndarray:
        p = rng.dirichlet(np.full(k, 2.0))
        return p / p.sum()

    loc_p, gen_p = skewed(len(_LOCATIONS)), np.array([0.45, 0.4, 0.1, 0.05])
    prod_p, col_p, pl_p = skewed(len(_PRODUCTS)), skewed(len(_COLOURS)), skewed(len(_PLACEMENTS))
    out = []
    for _ in range(n):
        interests = None
        if rng.random() > 0.1:
            k = int(rng.integers(1, 4))
            names = rng.choice(len(_INTERESTS), size=k, replace=False)
            weights = rng.dirichlet(np.ones(k))
            interests = {_INTERESTS[i]: float(w) for i, w in zip(names, weights, strict=True)}
        out.append(
            {
                "location": _LOCATIONS[rng.choice(len(_LOCATIONS), p=loc_p)],
                "gender": _GENDERS[rng.choice(len(_GENDERS), p=gen_p)],
                "interests": interests,
                "category": _PRODUCTS[rng.choice(len(_PRODUCTS), p=prod_p)],
                "colour": _COLOURS[rng.choice(len(_COLOURS), p=col_p)],
                "placement": _PLACEMENTS[rng.choice(len(_PLACEMENTS), p=pl_p)],
            }
        )
    return out


def planted_model(
    rng: np.random.Generator, n_arms: int, dim: int, scale: float = 0.5
) -> np.ndarray:
    """Per-arm logistic weights ``(n_arms, dim)``, N(0, scale^2) each."""
    return rng.normal(0.0, scale, size=(n_arms, dim))


def click_probabilities(X: np.ndarray, theta: np.ndarray, base_ctr: float) -> np.ndarray:
    """``(T, n_arms)`` planted click probabilities."""
    logits = np.log(base_ctr / (1 - base_ctr)) + X @ theta.T
    return 1.0 / (1.0 + np.exp(-logits))


def _run_linucb(X, clicks, alpha: float) -> np.ndarray:
    model = LinUCB(clicks.shape[1], X.shape[1], alpha=alpha)
    chosen = np.empty(len(X), dtype=np.int64)
    for t, x in enumerate(X):
        arm = model.choose(x)
        model.update(arm, x, float(clicks[t, arm]))
        chosen[t] = arm
    return chosen


def _run_epsilon_greedy(clicks, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    n_arms = clicks.shape[1]
    pulls = np.zeros(n_arms)
    total = np.zeros(n_arms)
    chosen = np.empty(len(clicks), dtype=np.int64)
    explore = rng.random(len(clicks)) < epsilon
    random_arm = rng.integers(0, n_arms, len(clicks))
    for t in range(len(clicks)):
        if explore[t]:
            arm = int(random_arm[t])
        else:  # untried arms first, then the best empirical click rate
            means = np.where(pulls > 0, total / np.maximum(pulls, 1), np.inf)
            arm = int(np.argmax(means))
        pulls[arm] += 1
        total[arm] += clicks[t, arm]
        chosen[t] = arm
    return chosen


def _checkpoints(rounds: int, checkpoints: Sequence[int] | None) -> list[int]:
    if checkpoints is None:
        checkpoints = [round(rounds * f) for f in (0.02, 0.1, 0.25, 0.5, 1.0)]
    return sorted({int(c) for c in checkpoints if 0 < int(c) <= rounds} | {rounds})


def bench_bandit(
    rounds: int = 5000,
    seed: int = 0,
    repeats: int = 3,
    arms: Sequence[str] = DEFAULT_ARMS,
    alpha: float = DEFAULT_ALPHA,
    epsilon: float = 0.1,
    base_ctr: float = 0.05,
    scale: float = 0.5,
    checkpoints: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Cumulative expected regret of each policy, averaged over ``repeats`` simulated worlds
    (seeds ``seed``, ``seed + 1``, ...), at several checkpoints.

    Returns a JSON-ready report: ``regret[policy]`` (mean cumulative regret at each of
    ``checkpoints``), ``regret_std`` (its spread over repeats), ``ctr`` (clicks per impression),
    ``last_share_best`` (how often each policy chose the truly best theme in the last 10% of
    rounds) and ``winner`` (lowest final regret).
    """
    if rounds < 1 or repeats < 1:
        raise StagingError("rounds and repeats must be at least 1.")
    if not 0 < base_ctr < 1:
        raise StagingError(f"base_ctr must be between 0 and 1, not {base_ctr}.")
    if not 0 <= epsilon <= 1:
        raise StagingError(f"epsilon must be between 0 and 1, not {epsilon}.")
    arms = list(arms)
    if len(arms) < 2:
        raise StagingError("The simulator needs at least two arms (themes).")
    marks = _checkpoints(rounds, checkpoints)
    featurizer = ContextFeaturizer()
    names = [*POLICIES, "best-fixed"]
    curves = {p: np.zeros((repeats, len(marks))) for p in names}
    ctr = {p: np.zeros(repeats) for p in names}
    share = {p: np.zeros(repeats) for p in names}
    seconds = {p: 0.0 for p in POLICIES}
    tail = max(1, rounds // 10)
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        X = np.stack([featurizer.transform(parse_context(c)) for c in sample_contexts(rng, rounds)])
        theta = planted_model(rng, len(arms), featurizer.dim, scale)
        P = click_probabilities(X, theta, base_ctr)
        clicks = rng.random(P.shape) < P  # common random numbers for every policy
        best = P.max(axis=1)
        best_arm = P.argmax(axis=1)
        policy_rng = np.random.default_rng([seed, r, 1])
        choices: dict[str, np.ndarray] = {}
        for policy in POLICIES:
            start = time.perf_counter()
            if policy == "linucb":
                choices[policy] = _run_linucb(X, clicks, alpha)
            elif policy == "epsilon-greedy":
                choices[policy] = _run_epsilon_greedy(clicks, epsilon, policy_rng)
            else:
                choices[policy] = policy_rng.integers(0, len(arms), rounds)
            seconds[policy] += time.perf_counter() - start
        choices["best-fixed"] = np.full(rounds, int(P.mean(axis=0).argmax()))
        rows = np.arange(rounds)
        for policy, chosen in choices.items():
            cumulative = np.cumsum(best - P[rows, chosen])
            curves[policy][r] = cumulative[np.array(marks) - 1]
            ctr[policy][r] = clicks[rows, chosen].mean()
            share[policy][r] = (chosen[-tail:] == best_arm[-tail:]).mean()
    final = {p: float(curves[p][:, -1].mean()) for p in POLICIES}
    winner = min(final, key=final.get)
    return {
        "rounds": rounds,
        "repeats": repeats,
        "seed": seed,
        "arms": arms,
        "features": featurizer.dim,
        "alpha": alpha,
        "epsilon": epsilon,
        "base_ctr": base_ctr,
        "checkpoints": marks,
        "regret": {p: [round(float(v), 2) for v in curves[p].mean(axis=0)] for p in names},
        "regret_std": {p: [round(float(v), 2) for v in curves[p].std(axis=0)] for p in names},
        "ctr": {p: round(float(ctr[p].mean()), 4) for p in names},
        "last_share_best": {p: round(float(share[p].mean()), 3) for p in names},
        "seconds": {p: round(seconds[p] / repeats, 3) for p in POLICIES},
        "winner": winner,
        "regret_vs_random": round(final[winner] / max(final["random"], 1e-12), 3),
    }
