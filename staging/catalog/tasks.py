"""What is done with a catalog index, beyond its own methods: build or update it, add a
designer's uploaded rooms, delete it, analyse its staged scenes, and turn a product photo
into a query.

Each task is given what it needs from outside (an update's :class:`IndexTools`, how to embed
the product, how to analyse a scene, how to forget an opened index); the engine hands over
its models and caches and delegates here. Nothing here imports the engine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.errors import StagingError

if TYPE_CHECKING:
    from staging.catalog import CatalogIndex, Hit, IndexTools, UpdateReport
    from staging.embed.base import Embedder


def index_key(path: str | os.PathLike) -> str:
    """The one name of an index folder (absolute, user and links resolved): an index opened
    by two spellings of its path is opened once."""
    return str(Path(os.fspath(path)).expanduser().resolve())


def created(index: str | os.PathLike | CatalogIndex) -> str | os.PathLike | CatalogIndex:
    """``index`` as given, its folder first made an empty index when it holds none."""
    from staging.catalog import CatalogIndex

    if not isinstance(index, CatalogIndex):
        CatalogIndex.open(index, create=True).close()
    return index


def update_index(
    catalog: CatalogIndex,
    tools: Callable[[str | None], IndexTools],
    folder: str | os.PathLike,
    csv: str | os.PathLike | None,
    embedder: str | None,
    progress: bool,
    analyse: Callable[[CatalogIndex], Any] | None,
    options: dict[str, Any],
) -> UpdateReport:
    """Update ``catalog`` from the images in ``folder`` (and ``csv``) with ``tools(embedder
    name)``: the staged test, the product mask and the embedding of each image. The given
    ``embedder`` must be the index's own; default the index's (or
    :data:`staging.embed.DEFAULT` for a new index). ``analyse(catalog)`` then analyses its
    staged scenes for copy-paste, when given. ``options``: those of
    :meth:`CatalogIndex.update` (``category_column``, ``batch_size``, ``workers``)."""
    catalog.check_embedder(embedder)
    chosen = tools(embedder or catalog.embedder_name)
    report = catalog.update(chosen, folder, csv=csv, progress=progress, **options)
    if analyse is not None:
        analyse(catalog)
    return report


def index_uploads(
    index: str | os.PathLike,
    files: list[str | os.PathLike],
    update: Callable[[Path, Path | None], UpdateReport],
) -> UpdateReport:
    """Copy uploaded room photos (files, or zips of them, and at most one CSV) into
    ``<index>/images/`` within the limits of :mod:`staging.catalog.uploads`, then index them
    with ``update(folder, csv)``. Files that cannot be used are in the report's ``failed`` by
    file name with their reason (and not kept); an upload with no usable image is an error."""
    from staging.catalog.uploads import gather_uploads

    folder = Path(os.fspath(index)).expanduser() / "images"
    gathered = gather_uploads(files, folder)
    report = update(folder, gathered.csv)
    for path, _ in report.failed:  # an unreadable upload is listed once, not kept
        if Path(path).parent == folder:
            Path(path).unlink(missing_ok=True)
    # By file name: the client uploaded names, and must not learn the server's folders.
    report.failed = gathered.rejected + [(Path(p).name, why) for p, why in report.failed]
    return report


def delete_index(index: str | os.PathLike, forget: Callable[[str], CatalogIndex | None]) -> None:
    """Delete the index in folder ``index``, uploaded images included (an index built from
    a folder of the user's leaves that folder alone); ``forget(index_key)`` hands back the
    opened index, if one is open, and it is closed first."""
    path = Path(index_key(index))
    if not (path / "catalog.sqlite").is_file():
        raise StagingError(f"No catalog index in '{path.name}' to delete.")
    opened = forget(str(path))
    if opened is not None:
        opened.close()
    shutil.rmtree(path)


def analyse_scenes(
    items: Sequence[Hit], analyse: Callable[[Hit], tuple[Any, Any]], progress: bool
) -> int:
    """Analyse every staged scene ``items`` holds (its object, floor line, shadow and light;
    :mod:`staging.compose.scene`) with ``analyse(hit) -> (analysis, problem)``
    (:meth:`SceneStore.of_hit`), which keeps the analyses on disk, so a query ranks its
    candidates without decoding them. An index update does it; a scene analysed before costs
    a hash, and one gone since is said, not fatal. Returns how many scenes have an analysis."""
    from tqdm import tqdm

    done = 0
    for hit in tqdm(items, desc="scenes", unit="img", disable=not progress or not items):
        try:
            analysis, _ = analyse(hit)
        except (StagingError, OSError) as exc:  # a scene gone since: said, not fatal
            if progress:
                tqdm.write(f"skipped {hit.path}: {exc}")
            continue
        done += analysis is not None
    return done


def query(
    index: str | os.PathLike | CatalogIndex | None,
    open_index: Callable[[Any], CatalogIndex],
    embedder: str | None,
    load_embedder: Callable[[str], Embedder],
    embed: Callable[[str], np.ndarray],
) -> tuple[CatalogIndex, np.ndarray | None]:
    """The open index and the product's embedding by the index's embedder, ``embed(name)``
    (None: an empty index). A given ``embedder`` must be the index's, and the loaded one
    the version the index was built with."""
    if index is None:
        raise StagingError("search needs an index: pass index='path/to/index-folder'.")
    catalog = open_index(index)
    catalog.check_embedder(embedder)
    if catalog.embedder_name is None:
        return catalog, None
    catalog.check_version(load_embedder(catalog.embedder_name))
    return catalog, embed(catalog.embedder_name)


__all__ = [
    "analyse_scenes",
    "created",
    "delete_index",
    "index_key",
    "index_uploads",
    "query",
    "update_index",
]
