"""Model registry and local model store.

Every pretrained network the project can use is a :class:`ModelSpec` in :data:`REGISTRY`: which
files it needs, their checksum, licence and size, and the *sources* it can be fetched from, tried
in order by ``staging models pull NAME``. A :class:`ModelStore` finds those files in the models
directories and, only when asked, fetches them.

The package, by concern: :mod:`~staging.models.sources` (the kinds of place a model's bytes are
published, and how each is fetched), :mod:`~staging.models.registry` (the specs of every known
model) and :mod:`~staging.models.store` (finding, verifying and pulling them). Every name is
importable from ``staging.models``.

Why not just let each library download on first use? Because this tool must work offline and on
locked-down servers: a missing model must fail fast with a message that names the command that
fetches it, never hang on a network call. ``HF_HUB_OFFLINE=1`` and ``STAGING_OFFLINE=1`` forbid
every download.
"""

from staging.models.registry import REGISTRY, ModelSpec, get_spec, register
from staging.models.sources import HfRepo, NpmResource, Source, SourceError, Url, WheelMember
from staging.models.store import MIN_PREFIX_HEX, ModelStatus, ModelStore, checksum_matches

__all__ = [
    "MIN_PREFIX_HEX",
    "REGISTRY",
    "HfRepo",
    "ModelSpec",
    "ModelStatus",
    "ModelStore",
    "NpmResource",
    "Source",
    "SourceError",
    "Url",
    "WheelMember",
    "checksum_matches",
    "get_spec",
    "register",
]
