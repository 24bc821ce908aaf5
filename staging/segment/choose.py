"""Which segmenter ``auto`` means and which scene parser copy-paste uses, and why.

Both are choices among models that may or may not be on disk, so both are policy with a
memory: :class:`SegmenterChoice` prefers the best pretrained segmenter on disk, fetches the
recommended one on a fresh machine (once: a failed fetch is not retried on every image) and
otherwise falls back to the weights-free matting for plain-backdrop shots, refusing staged
scenes with an error that names the model to pull. :class:`ParserChoice` picks a scene
parser whose weights and packages are there, and one that fails to load or to parse is
remembered and, under ``auto``, left out with one warning. Each answers a one-line status for
the CLI and the app without touching the network.

The engine builds both from its settings, model store and model cache and delegates to
them; nothing here imports the engine.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.errors import ModelNotAvailableError, StagingError
from staging.models import REGISTRY, ModelStore, get_spec
from staging.runtime import Runtime
from staging.segment import PRETRAINED_PREFERENCE, RECOMMENDED
from staging.segment.staged import classify_staged
from staging.settings import Settings

if TYPE_CHECKING:
    from staging.segment.parse import SceneParser

Cached = Callable[[str, str, Callable[[], Any]], Any]  # the engine's model cache


class SegmenterChoice:
    """What ``auto`` segments with (see the module doc).

    Args:
        settings: the engine's settings (``segment_backend``, ``auto_pull``).
        store: the model store (what is on disk, offline, pulls).
    """

    def __init__(self, settings: Settings, store: ModelStore):
        self.settings = settings
        self.store = store
        self.pull_failed: str | None = None  # why the first-use fetch failed, if it did
        self._lock = threading.Lock()

    def pretrained(self) -> str | None:
        """The best pretrained segmentation backend whose weights are on disk, if any."""
        for name in PRETRAINED_PREFERENCE:
            if self.store.find(name) is not None:
                return name
        return None

    def pretrained_or_pull(self) -> str | None:
        """:meth:`pretrained`; on a fresh machine, first pull the recommended one (with a
        progress bar) unless offline or ``auto_pull`` is off. A failed pull is tried once:
        after that ``auto`` falls back without waiting on the network."""
        name = self.pretrained()
        if name is not None or self.store.offline or not self.settings.auto_pull:
            return name
        with self._lock:
            if self.pull_failed is not None:
                return None
        try:
            self.store.pull(RECOMMENDED, progress=True)
        except StagingError as exc:
            with self._lock:
                self.pull_failed = str(exc)
            warnings.warn(
                f"Could not fetch the segmentation model {RECOMMENDED!r}; plain-backdrop shots "
                f"use the weights-free 'backdrop' matting.\n{exc}",
                stacklevel=4,
            )
            return None
        return RECOMMENDED

    def pull(self, name: str = RECOMMENDED, progress: bool = True) -> Path:
        """Fetch a registered model into the models folder (each source in turn, checksum
        verified); a fetch that failed before is then tried again on first use."""
        path = self.store.pull(name, progress=progress)
        with self._lock:
            self.pull_failed = None
        return path

    def can_segment_scenes(self) -> bool:
        """Whether ``auto`` has (or will fetch on first use) a pretrained model for scenes."""
        if self.pretrained() is not None:
            return True
        return self.settings.auto_pull and not self.store.offline and self.pull_failed is None

    def resolve(self, image: np.ndarray, backend: str | None = None) -> str:
        """The backend ``backend`` (None: the settings') means for this image: itself, or for
        ``auto`` the pretrained model, else the choice by whether the image is staged."""
        name = backend or self.settings.segment_backend
        if name != "auto":
            return name
        pretrained = self.pretrained_or_pull()
        if pretrained is not None:
            return pretrained  # the network handles shots and scenes alike: no test needed
        return self.auto(classify_staged(image).staged)

    def auto(self, staged: bool) -> str:
        """``auto`` for a staged scene or a plain-background shot.

        The best pretrained model on disk, for every image (ranked by measured quality:
        IS-Net > BiRefNet > U^2-Net > U^2-Net-p); fetched first on a fresh machine. Without
        one, the weights-free ``backdrop`` for plain-backdrop shots; a staged scene raises
        :class:`ModelNotAvailableError` naming the model to pull: a background model cannot
        describe a room, and a silent wrong mask is worse than an error.
        """
        pretrained = self.pretrained_or_pull()
        if pretrained is not None:
            return pretrained
        if not staged:
            return "backdrop"
        spec = get_spec(RECOMMENDED)
        raise ModelNotAvailableError(
            "This image is a staged scene (a product in a room), and segmenting a scene needs "
            "a pretrained model: the weights-free 'backdrop' matting only separates a product "
            f"from a plain backdrop. Fetch one with:\n    staging models pull {RECOMMENDED}\n"
            f"({spec.size_mb:.0f} MB; `staging models list` shows the others)."
        )

    def index_notice(self) -> str | None:
        """What an index update says first when ``auto`` cannot segment its scenes."""
        if self.settings.segment_backend != "auto" or self.can_segment_scenes():
            return None
        return (
            "No pretrained segmentation model on disk: staged scenes without a mask in the "
            "CSV are skipped, product shots use the weights-free 'backdrop' matting. Fetch "
            f"one with `staging models pull {RECOMMENDED}` "
            f"({get_spec(RECOMMENDED).size_mb:.0f} MB)."
        )

    def status(self) -> str:
        """One line on what ``auto`` segments with, for banners: the model on disk, or why
        there is none and what to pull (no network is touched)."""
        name = self.pretrained()
        if name is not None:
            return f"Segmentation: `{name}` (pretrained, in the models folder)."
        spec = get_spec(RECOMMENDED)
        if self.store.offline:
            why = "offline mode is on (STAGING_OFFLINE / HF_HUB_OFFLINE)"
        elif self.pull_failed is not None:
            why = "fetching it failed"
        elif self.settings.auto_pull:
            return (
                f"Segmentation: no pretrained model on disk yet; `{RECOMMENDED}` "
                f"({spec.size_mb:.0f} MB) is fetched on first use."
            )
        else:
            why = "automatic fetching is off (STAGING_AUTO_PULL=0)"
        return (
            f"⚠ No pretrained segmentation model on disk and {why}: plain-backdrop shots use the "
            "weights-free `backdrop` matting (less accurate), staged scenes cannot be segmented. "
            f"Fetch the model with `staging models pull {RECOMMENDED}` ({spec.size_mb:.0f} MB)."
        )


class ParserChoice:
    """The scene parser copy-paste's scene analysis uses (see the module doc).

    Args:
        settings: the engine's settings (``scene_parser``).
        store: the model store (which checkpoints are on disk).
        cached: the engine's model cache, ``cached(kind, name, factory)``.
        runtime: the runtime a parser loads with.
    """

    def __init__(
        self,
        settings: Settings,
        store: ModelStore,
        cached: Cached,
        runtime: Callable[[], Runtime],
    ):
        self.settings = settings
        self.store = store
        self.cached = cached
        self.runtime = runtime
        self.failed: str | None = None  # why the parser failed (it is not tried again)

    def name(self) -> str | None:
        """The setting's name, or for ``auto`` the first parser (:mod:`staging.segment.parse`)
        whose weights are on disk and whose packages import; None for ``none`` or when
        ``auto`` finds none (no download: a parser is an improvement, not a need)."""
        import importlib.util

        from staging.segment.parse import PARSERS

        wanted = self.settings.scene_parser
        if wanted != "auto":
            return None if wanted == "none" else wanted
        if self.failed is not None:
            return None
        if not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
            return None
        on_disk = (name for name in PARSERS if name in REGISTRY and self.store.find(name))
        return next(on_disk, None)

    def load(self, name: str | None) -> SceneParser | None:
        """The loaded scene parser called ``name``, or None. One that ``auto`` found but
        cannot load (a damaged checkpoint, a torch that does not import) is said once, as a
        warning, and left out: staging goes on without it. A named one raises."""
        from staging.segment.parse import create_parser

        if name is None:
            return None
        if self.failed is not None:  # a named one that failed: not loaded again
            if self.settings.scene_parser == "auto":  # failed during this call: left out
                return None
            raise StagingError(f"The scene parser does not load: {self.failed}")
        try:
            return self.cached("parse", name, lambda: create_parser(name, self.runtime()))
        except ModelNotAvailableError:  # not on disk (yet): a pull fixes it, nothing to keep
            raise
        except StagingError as exc:
            return self.failure(f"{name}: {exc}", "does not load", exc)

    def failure(self, why: str, what: str, exc: Exception) -> None:
        """Remember why the scene parser failed (it is not tried again); under ``auto`` warn
        once and go on without it (None), else raise a StagingError that says why."""
        self.failed = why
        if self.settings.scene_parser != "auto":
            raise StagingError(f"The scene parser {what}: {why}") from exc
        warnings.warn(f"Staging without a scene parser: {why}", stacklevel=3)
        return None

    def config(self, name: str) -> Path | None:
        """The parser checkpoint's config file (its contents go into cache keys, so analyses
        by another checkpoint under the same name are not reused), if it is on disk."""
        folder = self.store.find(name) if name in REGISTRY else None
        return None if folder is None else Path(folder) / "config.json"

    def status(self) -> str:
        """One line on the scene parser copy-paste analyses scenes with, for the CLI and the
        app: which, or what to pull for one (no network is touched)."""
        from staging.segment.parse import PARSERS

        name = self.name()
        if name is not None and name not in PARSERS:
            return f"Scene parser: `{name}` is unknown (known: {', '.join(PARSERS)}, none)."
        if name is not None and name in REGISTRY and self.store.find(name) is None:
            return f"Scene parser: `{name}` is not on disk: `staging models pull {name}`."
        if name is not None and self.failed is not None:
            return f"Scene parser: `{name}` does not load ({self.failed})."
        if name is not None:
            return f"Scene parser: `{name}`: copy-paste sees every piece of furniture it names."
        if self.settings.scene_parser == "none":
            return "Scene parser: off (scene_parser=none)."
        if self.failed is not None:
            return f"Scene parser: none, the one on disk does not load ({self.failed})."
        best = next(iter(PARSERS))
        return (
            "Scene parser: none, so copy-paste knows only the objects the segmenter marks (the "
            "salient group). For every piece of furniture: `pip install -r "
            f"requirements-torch.txt` and `staging models pull {best}` "
            f"({get_spec(best).size_mb:.0f} MB), then index again."
        )


__all__ = ["ParserChoice", "SegmenterChoice"]
