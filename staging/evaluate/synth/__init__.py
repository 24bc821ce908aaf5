"""Synthetic catalog shots: an object (RGB + alpha) composited onto a studio background.

:func:`compose_catalog_shot` places an object on a generated studio background (white,
off-white, grey, gradients, spotlight, pastel colours, floor/wall sweeps) with soft contact,
cast or drop shadows that darken the background multiplicatively behind the object, then adds
mild sensor noise and optional JPEG re-compression. The ground truth is the object's alpha only
(shadows are not product).

:func:`procedural_object` draws simple anti-aliased objects (chair, lamp, plant, box, grey,
white, glass, ring) so tests need no data.

Everything is deterministic given a ``numpy.random.Generator``.

The package is split by concern: :mod:`~staging.evaluate.synth.compose` (placing the object
and finishing the shot), :mod:`~staging.evaluate.synth.backgrounds`,
:mod:`~staging.evaluate.synth.shadows` and :mod:`~staging.evaluate.synth.objects`. Import from
``staging.evaluate.synth``: the public names are re-exported here.
"""

from staging.evaluate.synth.backgrounds import BACKGROUNDS, PASTELS
from staging.evaluate.synth.compose import (
    BACKGROUND_WEIGHTS,
    SHADOW_WEIGHTS,
    compose_catalog_shot,
)
from staging.evaluate.synth.objects import KINDS, procedural_object
from staging.evaluate.synth.shadows import SHADOWS

__all__ = [
    "BACKGROUNDS",
    "BACKGROUND_WEIGHTS",
    "KINDS",
    "PASTELS",
    "SHADOWS",
    "SHADOW_WEIGHTS",
    "compose_catalog_shot",
    "procedural_object",
]
