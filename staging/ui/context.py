"""What every tab shares: the engine, the app's folders, the status line and the result files.

:class:`AppContext` is the app's state, made once per app (the tests make their own, with their
own engine and folders): the one engine shared by every tab and request, the cache folder of
the demo index and the named indexes, the folder of this process's result files, and the lock
that builds the demo index once. The tabs' handlers are methods of its subclass
:class:`staging.ui.Studio`, so none of them reads a module global.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from staging import StagingEngine, captions
from staging.access import IndexFolders
from staging.io import save_image, save_mask
from staging.ui.config import DEMO_CATALOG, DEMO_CSV, default_cache
from staging.ui.plumbing import readable_errors, refusals


class AppContext:
    """The engine, the folders and the demo index of one app.

    Args:
        engine: the engine every handler calls (default: one from the ``STAGING_*`` settings).
        cache: where the demo index and the named indexes live (default ``STAGING_APP_CACHE``,
            else the per-user cache folder).
        demo_index: the demo catalog's index (default ``<cache>/demo-index``).
        results: where result files (staged images, videos, exports) go; by default a new
            folder of this process, removed at exit (Gradio copies what it serves into its own
            cache).
    """

    readable_errors = staticmethod(readable_errors)

    def __init__(
        self,
        engine: StagingEngine | None = None,
        cache: str | os.PathLike | None = None,
        demo_index: str | os.PathLike | None = None,
        results: str | os.PathLike | None = None,
    ):
        self.engine = engine if engine is not None else StagingEngine()
        self.cache = Path(cache) if cache is not None else default_cache()
        self.demo_index_dir = Path(demo_index) if demo_index else self.cache / "demo-index"
        if results is None:
            results = tempfile.mkdtemp(prefix="staging-app-")
            atexit.register(shutil.rmtree, results, ignore_errors=True)
        self.results_dir = Path(results)
        self.indexes = IndexFolders(self.cache, DEMO_CATALOG, self.demo_index_dir)
        self._demo_lock = threading.Lock()
        self._demo_checked = False

    # -- the status line ---------------------------------------------------------------------
    def status_line(self, steps: dict[str, str]) -> str:
        """The status line: which backend each step used, and on which device."""
        parts = [f"**{step}**: {text}" for step, text in steps.items()]
        body = " · ".join(parts) if parts else "nothing run yet"
        return f"Device **{self.engine.device}** · {body}"

    def _step(self, steps: dict | None, step: str, text: str) -> tuple[dict, str]:
        """``steps`` with ``step`` said in ``text``, and the new status line."""
        steps = dict(steps or {})
        steps[step] = text
        return steps, self.status_line(steps)

    # -- result files ------------------------------------------------------------------------
    def _result_path(self, stem: str, suffix: str) -> Path:
        return self.results_dir / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"

    def _served(self, image: Any, stem: str) -> str:
        """``image`` (array or PIL) written to a new file, atomically, for an output to show.

        Handing Gradio pixels makes it write them to a file named by their content, rewriting
        that file in place whenever the same picture is shown again — while a browser may be
        reading it (h11 "Too much data for declared Content-Length", a broken preview). A new
        file per result, which Gradio copies into its cache atomically, is never rewritten.
        """
        return str(save_image(self._result_path(stem, ".png"), image))

    def _keep(
        self, results: list | None, staged: list, product: str | None = None, label: str = ""
    ) -> tuple[list, list]:
        """Save staged results as files; add them to the session's results (the Compare tab),
        each named by its number and :func:`staging.captions.label` (``label`` goes before it,
        e.g. "Adjusted "). ``product``: the photo's file name, to name exports by."""
        results = list(results or [])
        gallery = []
        for number, item in enumerate(staged, start=1):
            stem = f"{item.mode}-{number}"
            image = item.save(self._result_path(stem, ".png"))
            alpha = save_mask(self._result_path(f"{stem}-alpha", ".png"), item.alpha)
            caption = f"#{len(results) + 1} {label}{captions.label(item)}"
            results.append(
                {
                    "label": caption,
                    "image": str(image),
                    "alpha": str(alpha),
                    "info": item.describe(),
                    "product": Path(product).stem if product else None,
                }
            )
            gallery.append((str(image), caption))
        return results, gallery

    # -- server paths and indexes (the rules: staging.access) ------------------------------
    def catalog_roots(self) -> list[Path]:
        """The server folders a browser or API client may name (``STAGING_CATALOG_ROOTS``; by
        default the demo catalog and the app's cache folder)."""
        return self.indexes.roots()

    @refusals
    def confined(self, path: str, what: str) -> Path:
        """``path`` resolved (``~``, ``..`` and symlinks) and checked to lie inside
        :meth:`catalog_roots`: a client must not read or write other server folders."""
        return self.indexes.confined(path, what)

    @refusals
    def index_path(self, index: str | None) -> Path:
        """Where the index called ``index`` lives: ``demo`` (or nothing) is the demo index, a
        plain name one of the user's indexes in the cache folder, anything else a shared
        server folder."""
        return self.indexes.path(index)

    @refusals
    def _own_index(self, name: str) -> Path:
        """The index a browser may write to or delete: a plain name, never the demo's or a
        server folder."""
        return self.indexes.own(name)

    def default_index_dir(self, folder: str | os.PathLike) -> Path:
        """Where the app keeps the index of ``folder`` when no index is named."""
        return self.indexes.default_for(folder)

    def index_choices(self) -> list[str]:
        """``demo`` and the user's named indexes, for the Index dropdown."""
        return self.indexes.names()

    def build_index(self, folder, csv=None, out=None, progress=None):
        """``staging index FOLDER --out OUT [--csv CSV]``: build or update, then the open index."""
        out = Path(out) if out else self.default_index_dir(folder)
        report = self.engine.update_index(
            out, folder, csv=csv or None, progress=progress is not None
        )
        index = self.engine.index(out)  # the engine's shared, cached handle
        return index, report

    def demo_index(self, progress=None) -> Path:
        """The demo catalog's index, built in the cache folder on first use, once per app."""
        with self._demo_lock:
            if not self._demo_checked:
                if progress is not None:
                    progress(0.0, desc="indexing the demo catalog (first use)")
                self.build_index(DEMO_CATALOG, DEMO_CSV, self.demo_index_dir, progress=progress)
                self._demo_checked = True
        return self.demo_index_dir

    def _index_dir(self, index_dir: str | None, progress=None) -> Path:
        """The index ``index_dir`` names, the demo index built first when it is that one."""
        path = self.index_path(index_dir)
        return self.demo_index(progress) if path == self.demo_index_dir else path
