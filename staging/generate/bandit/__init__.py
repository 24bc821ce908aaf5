"""Choosing a background theme per request: a LinUCB contextual bandit per product category.

Taboola's staging pipeline (Czapp et al. 2024) could not tell in advance which background
makes a given user click on a given product, so it let online learning decide: *one LinUCB per
item category*, choosing among a few predefined prompts, with the click probability depending
on the user (location, gender), the product (sub-category, colour) and the placement
(resolution). This package is that bandit, by concern:

* :mod:`~staging.generate.bandit.context` -- :class:`Context` and :class:`ContextFeaturizer`:
  the request described as a fixed-length vector (user location, gender, interests; product
  sub-category and colour; placement size).
* :mod:`~staging.generate.bandit.linucb` -- :class:`LinUCB`, the disjoint model of Li et al.
  (2010), one ridge regression per arm.
* :mod:`~staging.generate.bandit.state` -- :class:`PromptBandit` (one category's bandit, arms
  named after its themes, saved as JSON) and :class:`BanditRegistry` (one per category in a
  state folder).
* :mod:`~staging.generate.bandit.suggest` -- :func:`suggest` and :func:`record_feedback`, what
  the engine calls.

Choices are deterministic given the state (ties go to the lowest arm index), so a bandit saved
and loaded makes exactly the same choices: the JSON stores floats with full precision. Every
name is importable from ``staging.generate.bandit``.
"""

from staging.generate.bandit.context import (
    COLOUR_FAMILIES,
    Context,
    ContextFeaturizer,
    ContextLike,
    colour_families,
    parse_context,
    parse_placement,
)
from staging.generate.bandit.linucb import (
    DEFAULT_ALPHA,
    DEFAULT_RIDGE,
    REFRESH_EVERY,
    LinUCB,
    Scores,
)
from staging.generate.bandit.state import (
    FORMAT,
    FORMAT_VERSION,
    BanditRegistry,
    Choice,
    PromptBandit,
)
from staging.generate.bandit.suggest import Suggestion, record_feedback, suggest

__all__ = [
    "COLOUR_FAMILIES",
    "DEFAULT_ALPHA",
    "DEFAULT_RIDGE",
    "FORMAT",
    "FORMAT_VERSION",
    "REFRESH_EVERY",
    "BanditRegistry",
    "Choice",
    "Context",
    "ContextFeaturizer",
    "ContextLike",
    "LinUCB",
    "PromptBandit",
    "Scores",
    "Suggestion",
    "colour_families",
    "parse_context",
    "parse_placement",
    "record_feedback",
    "suggest",
]
