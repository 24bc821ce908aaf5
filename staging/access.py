"""What a client may name on the server: one set of path and name rules for the app and the service.

A browser or an API client names things that live on the server — a catalog folder, a CSV, an
index, a product id, a file in the service's inbox. The skins (``app.py`` and
:mod:`staging.service`) hold no rule of their own: each check is here, once.

* :func:`resolved_inside` — the one confinement check: a path with ``~``, ``..`` and symlinks
  resolved, kept only if it lies inside one of the given folders.
* :func:`catalog_roots` and :func:`confined` — the folders the app shares with the browser
  (``STAGING_CATALOG_ROOTS``, separated by ``os.pathsep``; by default the demo catalog and the
  app's cache folder), and the check that a typed path lies inside them.
* :class:`IndexFolders` — where the index a name stands for lives (``demo``, a plain name in the
  app's cache folder, or a shared server folder), which indexes a client may write or delete,
  and the name an index of a folder gets by default.
* :data:`PRODUCT_ID` and :func:`in_inbox` — the service's product ids (they become file names)
  and the files it may register from its inbox.

A refusal is an :class:`AccessRefused` (a :class:`~staging.errors.StagingError`): its message
says what was refused and what to do instead, and it quotes the name as the client wrote it.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from staging.errors import StagingError

ROOTS_ENV = "STAGING_CATALOG_ROOTS"
DEMO = "demo"  # the name of the demo catalog's index, read-only for clients
INDEXES = "indexes"  # the folder of the named indexes, inside the app's cache folder
INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a named index: a folder name
PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # a product id: a file's stem


class AccessRefused(StagingError):
    """A client named a server path outside the shared folders, or an index it may not write."""


def resolved_inside(path: str | os.PathLike, folders: Iterable[str | os.PathLike]) -> Path | None:
    """``path`` resolved (``~``, ``..`` and symlinks), or None when it lies inside none of
    ``folders`` (each resolved too): a client must not reach other server folders."""
    resolved = Path(path).expanduser().resolve()
    roots = [Path(folder).expanduser().resolve() for folder in folders]
    return resolved if any(resolved.is_relative_to(root) for root in roots) else None


def catalog_roots(defaults: Iterable[Path], environ: Mapping[str, str] | None = None) -> list[Path]:
    """The server folders a browser or API client may name (catalog, CSV, index folder):
    ``STAGING_CATALOG_ROOTS`` when set, else ``defaults``; read at each call, resolved."""
    configured = (os.environ if environ is None else environ).get(ROOTS_ENV, "")
    roots = [Path(p) for p in configured.split(os.pathsep) if p.strip()] or list(defaults)
    return [root.expanduser().resolve() for root in roots]


def confined(path: str, what: str, roots: Iterable[Path]) -> Path:
    """``path`` resolved and checked to lie inside ``roots``; else :class:`AccessRefused`
    naming ``what`` (e.g. "catalog folder") and the path as it was typed."""
    resolved = resolved_inside(path.strip(), roots)
    if resolved is None:
        raise AccessRefused(
            f"The {what} '{path.strip()}' is outside the folders this server shares with the "
            f"browser. Ask its administrator to add it to {ROOTS_ENV}, or use the demo catalog."
        )
    return resolved


def in_inbox(inbox: Path, path: str) -> Path | None:
    """The file ``path`` (relative to ``inbox``) resolved, or None when it leaves the inbox."""
    return resolved_inside(Path(inbox) / path, [inbox])


class IndexFolders:
    """Where the app's indexes live, and which of them a client may touch.

    ``demo`` (or no name) is the demo catalog's index, ``demo_index``; a plain name
    (:data:`INDEX_NAME`) is one of the user's indexes, ``<cache>/indexes/<name>``; anything
    else is a server folder, which must lie inside :meth:`roots`.
    """

    def __init__(self, cache: Path, demo_catalog: Path, demo_index: Path | None = None):
        self.cache = Path(cache)
        self.demo_catalog = Path(demo_catalog)
        self.demo_index = Path(demo_index) if demo_index else self.cache / "demo-index"

    @property
    def folder(self) -> Path:
        """The folder of the named indexes."""
        return self.cache / INDEXES

    def roots(self) -> list[Path]:
        """The shared folders: ``STAGING_CATALOG_ROOTS``, by default the demo catalog and the
        cache folder (where the indexes the app builds live)."""
        return catalog_roots([self.demo_catalog, self.cache])

    def confined(self, path: str, what: str) -> Path:
        """``path`` resolved, inside the shared folders (:func:`confined`)."""
        return confined(path, what, self.roots())

    def path(self, name: str | None) -> Path:
        """Where the index called ``name`` lives (a name, the demo's, or a shared folder)."""
        name = (name or "").strip()
        if name in ("", DEMO):
            return self.demo_index
        if INDEX_NAME.match(name):
            return self.folder / name
        return self.confined(name, "index folder")

    def own(self, name: str | None) -> Path:
        """The index a client may write to or delete: a plain name of its own, never the
        demo's or a server folder."""
        name = (name or "").strip()
        if name == DEMO or not INDEX_NAME.match(name):
            raise AccessRefused(
                f"'{name}' cannot be written by the browser: use a plain name of your own "
                "(letters, digits, '.', '_' or '-'), not 'demo' or a folder."
            )
        return self.folder / name

    def default_for(self, folder: str | os.PathLike) -> Path:
        """Where the index of ``folder`` goes when no index is named: the demo index for the
        demo catalog, else a name of its own (the folder's name and a digest of its path)."""
        path = Path(folder).expanduser().resolve()
        if path == self.demo_catalog.resolve():
            return self.demo_index
        digest = uuid.uuid5(uuid.NAMESPACE_URL, str(path)).hex[:8]
        return self.folder / f"{path.name or 'catalog'}-{digest}"

    def names(self) -> list[str]:
        """``demo`` and the named indexes that exist, sorted."""
        folder = self.folder
        found = (
            sorted(p.name for p in folder.iterdir() if (p / "catalog.sqlite").is_file())
            if folder.is_dir()
            else []
        )
        return [DEMO, *found]
