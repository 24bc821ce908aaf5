"""The engine's catalog-index methods (mixed into :class:`~staging.engine.StagingEngine`).

Each hands the engine's models to :mod:`staging.catalog.tasks`, which does the work. A mixin,
as diffusers composes its pipelines' loaders, so that the engine's own file stays its
settings, model cache and staging modes.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.catalog import CatalogIndex, IndexTools, tasks
from staging.catalog.scenes import CatalogScenes
from staging.io import ImageSource
from staging.options import SCENE_SIDE
from staging.pipelines.copy_paste import inferred

if TYPE_CHECKING:
    from staging.catalog import Hit, UpdateReport
    from staging.catalog.infer import InferredProduct

    Index = str | os.PathLike | CatalogIndex  # an index folder, or an open index


class CatalogMethods:
    """Open, build, update, delete and search catalog indexes with the engine's models (its
    ``settings``, ``models``, ``segment``, ``embed`` and ``scenes``, set in its ``__init__``)."""

    def index(self, path: Index) -> CatalogIndex:
        """The catalog index in folder ``path``, opened once; it notices later updates."""
        if isinstance(path, CatalogIndex):
            return path
        key = tasks.index_key(path)
        return self.models.get("index", key, lambda: CatalogIndex.open(key))

    def update_index(
        self, index: Index, folder: str | os.PathLike, csv: str | os.PathLike | None = None,
        embedder: str | None = None, progress: bool = True, analyse_scenes: bool = True,
        **options: Any,
    ) -> UpdateReport:  # fmt: skip
        """Build or update the index in folder ``index`` from the images in ``folder`` with
        this engine's models, then analyse its staged scenes (:meth:`analyse_scenes`)."""
        analyse = partial(self.analyse_scenes, progress=progress) if analyse_scenes else None
        return tasks.update_index(
            self.index(tasks.created(index)), self._index_tools, folder, csv, embedder, progress,
            analyse, options,
        )  # fmt: skip

    def _index_tools(self, embedder: str | None) -> IndexTools:
        """What an index update is handed: this engine's embedder, segmenter and loader."""
        s, notice = self.settings, self.segmenters.index_notice()
        return IndexTools(self.embedder(embedder), self._segment_for_index, self.load_image,
                          s.max_pixels, s.threads, notice)  # fmt: skip

    def _segment_for_index(self, rgb: np.ndarray, staged: bool) -> tuple[str, np.ndarray]:
        """Like ``auto``, reusing the staged verdict the index already has."""
        auto = self.settings.segment_backend == "auto"
        found = self.segment(rgb, backend=self.auto_segment_backend(staged) if auto else None)
        return found.backend, found.mask

    def index_uploads(
        self, index: str | os.PathLike, files: list[str | os.PathLike], progress: bool = True
    ) -> UpdateReport:
        """Add uploaded room photos (files, zips, at most one CSV) to the index in folder
        ``index`` and index them; unusable files are listed by name, not kept."""
        update = partial(self.update_index, index, progress=progress)  # (folder, csv)
        return tasks.index_uploads(index, files, update)

    def delete_index(self, index: str | os.PathLike) -> None:
        """Close the index in folder ``index`` and delete the folder, uploaded images included
        (an index built from a folder of yours leaves that folder alone)."""
        tasks.delete_index(index, lambda key: self.models.pop("index", key))

    def analyse_scenes(
        self, index: Index, max_side: int = SCENE_SIDE, progress: bool = True
    ) -> int:
        """Analyse the index's staged scenes for copy-paste and keep the analyses on disk, so
        a query decodes none to rank them; returns how many have one."""
        items, parser = self.index(index).staged_items(), self.scene_parser_name()
        return tasks.analyse_scenes(
            items, lambda hit: self.scenes.of_hit(hit, max_side, parser), progress
        )

    def search(
        self, image: ImageSource, k: int = 5, index: Index | None = None,
        staged_only: bool = True, category: str | None = None, index_type: str | None = None,
        embedder: str | None = None, mask: np.ndarray | None = None,
    ) -> list[Hit]:  # fmt: skip
        """The ``k`` items of ``index`` most similar (cosine) to the product in ``image``,
        embedded by the index's embedder (paper §5.3), filtered as
        :meth:`~staging.catalog.CatalogIndex.search` says."""
        catalog, vector = self._query(index, image, mask, embedder)
        if vector is None:
            return []
        return catalog.search(
            vector, k=k, staged_only=staged_only, category=category, index_type=index_type
        )

    def _query(self, index, image, mask, embedder=None) -> tuple[CatalogIndex, np.ndarray | None]:
        """The open index and the product's embedding (:func:`staging.catalog.tasks.query`)."""
        embed = partial(self.embed, image, mask=mask)  # by the index's embedder
        return tasks.query(index, self.index, embedder, self.embedder, embed)

    def infer_product(
        self, image: ImageSource, index: Index, mask: np.ndarray | None = None, k: int | None = None
    ) -> InferredProduct | None:
        """The product's kind and size as the catalog's nearest product shots vote, or None
        (:mod:`staging.catalog.infer`); copy-paste asks it for a bare photo."""
        catalog, vector = self._query(index, image, mask)
        return None if vector is None else inferred(catalog, vector, k)

    def catalog_scenes(self, index: Index) -> CatalogScenes:
        """What the index's staged scenes show (:mod:`staging.catalog.scenes`), built once per
        index version."""
        catalog = self.index(index)
        key = (str(catalog.path), catalog.generation)
        return self._catalog_scenes.get(key, lambda: CatalogScenes.build(catalog))
