"""The staging engine: one object that owns settings and models.

Creating an engine loads nothing heavy. Each model loads on first use, once, and is reused by
every later call, from any thread (the Gradio app shares one engine between all its tabs and
requests). Every capability is one method, so the app, the Python API and the CLI run exactly
the same code.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from staging.compose.scene import SceneCache
from staging.embed.base import Embedder
from staging.errors import ModelNotAvailableError, StagingError
from staging.io import ImageSource, at_most, load_image
from staging.models import REGISTRY, ModelStore, get_spec
from staging.options import (
    SCENE_SIDE,
    CopyPasteOptions,
    GenerationOptions,
    InSceneOptions,
    ParallaxOptions,
)
from staging.pipelines.cache import MB, MemoryCache
from staging.pipelines.cutout import Cutouts
from staging.pipelines.scenes import Analysed, SceneStore
from staging.result import Candidates, Staged
from staging.runtime import Runtime, resolve_device
from staging.segment import (
    PRETRAINED_PREFERENCE,
    RECOMMENDED,
    Segmentation,
    Segmenter,
    create_segmenter,
)
from staging.segment.base import WORKING_SIDE, to_photo_size
from staging.segment.cache import MaskCache, image_key
from staging.segment.staged import StagedVerdict, classify_staged
from staging.settings import Settings

if TYPE_CHECKING:
    from staging.animate import ParallaxClip
    from staging.catalog import CatalogIndex, Hit, UpdateReport
    from staging.catalog.infer import InferredProduct
    from staging.catalog.scenes import CatalogScenes
    from staging.generate.bandit import BanditRegistry, Suggestion
    from staging.generate.base import Generator
    from staging.generate.cache import GenerationCache
    from staging.generate.prompts import PromptLibrary
    from staging.inpaint.base import Inpainter
    from staging.segment.parse import SceneParser
    from staging.train.dataset import DatasetReport

T = TypeVar("T")


class StagingEngine:
    """Settings plus a lazy, thread-safe model cache, with one method per capability.

    >>> engine = StagingEngine(device="cpu")          # or StagingEngine(Settings(...))
    >>> seg = engine.segment("chair.jpg")               # backend "auto"
    >>> seg.mask, seg.prob, seg.cutout, seg.backend

    Keyword arguments override ``STAGING_*`` environment variables, which override defaults
    (see :class:`~staging.settings.Settings`).
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self.store = ModelStore(
            settings.model_dirs,
            offline=settings.is_offline,
            allow_download=settings.allow_download,
        )
        self._device: str | None = None
        self._models: dict[tuple[str, str], Any] = {}
        self._cache_lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._pull_failed: str | None = None
        self._parser_failed: str | None = None
        self.mask_cache = MaskCache(Path(settings.cache_dir).expanduser() / "masks")
        self.scene_cache = SceneCache(Path(settings.cache_dir).expanduser() / "scenes")
        self._catalog_scenes = MemoryCache(64 * MB)
        # The pipelines' shared state: the product cut-outs and the scenes they stage into.
        self.cutouts = Cutouts(lambda rgb, mask, backend: self._product_layer(rgb, mask, backend))
        self.scenes = SceneStore(
            load_image=lambda source: self.load_image(source),
            segment=lambda image: self.segment(image).mask,
            parser_name=lambda: self.scene_parser_name(),
            load_parser=self._load_parser,
            parser_config=self._parser_config,
            parser_failed=self._parser_failure,
            inpainter=lambda name: self.inpainter(name),
            disk=self.scene_cache,
        )

    # -- runtime --------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """The device models run on (``cuda``, ``mps`` or ``cpu``), resolved on first use."""
        if self._device is None:
            self._device = resolve_device(self.settings.device)
        return self._device

    @property
    def runtime(self) -> Runtime:
        return Runtime(self.store, self.device, self.settings.threads, self.settings.lora)

    def _cached(self, kind: str, name: str, factory: Callable[[], T]) -> T:
        """Build ``factory()`` once per (kind, name); concurrent callers wait for the first."""
        key = (kind, name)
        with self._cache_lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._models:  # another thread may have finished while we waited
                model = factory()
                with self._cache_lock:
                    self._models[key] = model
            return self._models[key]

    def loaded_models(self) -> list[str]:
        """Names of models currently in memory, as ``kind:name``."""
        with self._cache_lock:
            return [f"{kind}:{name}" for kind, name in self._models]

    def load_image(self, image: ImageSource) -> np.ndarray:
        """The one image loader (path, bytes, PIL or array) with this engine's pixel limit."""
        return load_image(image, max_pixels=self.settings.max_pixels)

    # -- segmentation ---------------------------------------------------------------------------
    def segmenter(self, backend: str) -> Segmenter:
        """The loaded backend called ``backend`` (not ``auto``)."""
        return self._cached("segment", backend, lambda: create_segmenter(backend, self.runtime))

    def pretrained_segmenter_name(self) -> str | None:
        """The best pretrained segmentation backend whose weights are on disk, if any."""
        for name in PRETRAINED_PREFERENCE:
            if self.store.find(name) is not None:
                return name
        return None

    def _pretrained_or_pull(self) -> str | None:
        """:meth:`pretrained_segmenter_name`; on a fresh machine, first pull the recommended one
        (with a progress bar) unless offline or ``auto_pull`` is off. A failed pull is tried
        once per engine: after that ``auto`` falls back without waiting on the network."""
        name = self.pretrained_segmenter_name()
        if name is not None or self.store.offline or not self.settings.auto_pull:
            return name
        with self._cache_lock:
            if self._pull_failed is not None:
                return None
        try:
            self.store.pull(RECOMMENDED, progress=True)
        except StagingError as exc:
            with self._cache_lock:
                self._pull_failed = str(exc)
            warnings.warn(
                f"Could not fetch the segmentation model {RECOMMENDED!r}; plain-backdrop shots "
                f"use the weights-free 'catalog' matting.\n{exc}",
                stacklevel=3,
            )
            return None
        return RECOMMENDED

    def pull_model(self, name: str = RECOMMENDED, progress: bool = True) -> Path:
        """Fetch a registered model (default: the recommended segmenter) into the models
        folder, each source in turn, checksum verified; ``auto`` uses it from the next call."""
        path = self.store.pull(name, progress=progress)
        with self._cache_lock:
            self._pull_failed = None
        return path

    def can_segment_scenes(self) -> bool:
        """Whether ``auto`` has (or will fetch on first use) a pretrained model for scenes."""
        if self.pretrained_segmenter_name() is not None:
            return True
        return self.settings.auto_pull and not self.store.offline and self._pull_failed is None

    def scene_parser_name(self) -> str | None:
        """The scene parser copy-paste's scene analysis uses (:mod:`staging.segment.parse`):
        the setting's name, or for ``auto`` the first whose weights are on disk and whose
        packages import; None for ``none`` or when ``auto`` finds none (no download: a parser
        is an improvement, not a need)."""
        import importlib.util

        from staging.segment.parse import PARSERS

        wanted = self.settings.scene_parser
        if wanted != "auto":
            return None if wanted == "none" else wanted
        if self._parser_failed is not None:
            return None
        if not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
            return None
        on_disk = (name for name in PARSERS if name in REGISTRY and self.store.find(name))
        return next(on_disk, None)

    def scene_parser(self) -> SceneParser | None:
        """The loaded scene parser (see :meth:`scene_parser_name`), or None. One that ``auto``
        found but cannot load (a damaged checkpoint, a torch that does not import) is said
        once, as a warning, and left out: staging goes on without it."""
        return self._load_parser(self.scene_parser_name())

    def _load_parser(self, name: str | None) -> SceneParser | None:
        """The scene parser called ``name`` (see :meth:`scene_parser`)."""
        from staging.segment.parse import create_parser

        if name is None:
            return None
        if self._parser_failed is not None:  # a named one that failed: not loaded again
            if self.settings.scene_parser == "auto":  # failed during this call: left out
                return None
            raise StagingError(f"The scene parser does not load: {self._parser_failed}")
        try:
            return self._cached("parse", name, lambda: create_parser(name, self.runtime))
        except ModelNotAvailableError:  # not on disk (yet): a pull fixes it, nothing to keep
            raise
        except StagingError as exc:
            return self._parser_failure(f"{name}: {exc}", "does not load", exc)

    def _parser_failure(self, why: str, what: str, exc: Exception) -> None:
        """Remember why the scene parser failed (it is not tried again); under ``auto`` warn
        once and go on without it (None), else raise a StagingError that says why."""
        self._parser_failed = why
        if self.settings.scene_parser != "auto":
            raise StagingError(f"The scene parser {what}: {why}") from exc
        warnings.warn(f"Staging without a scene parser: {why}", stacklevel=3)
        return None

    def scene_parser_status(self) -> str:
        """One line on the scene parser copy-paste analyses scenes with, for the CLI and the
        app: which, or what to pull for one (no network is touched)."""
        from staging.segment.parse import PARSERS

        name = self.scene_parser_name()
        if name is not None and name not in PARSERS:
            return f"Scene parser: `{name}` is unknown (known: {', '.join(PARSERS)}, none)."
        if name is not None and name in REGISTRY and self.store.find(name) is None:
            return f"Scene parser: `{name}` is not on disk: `staging models pull {name}`."
        if name is not None and self._parser_failed is not None:
            return f"Scene parser: `{name}` does not load ({self._parser_failed})."
        if name is not None:
            return f"Scene parser: `{name}`: copy-paste sees every piece of furniture it names."
        if self.settings.scene_parser == "none":
            return "Scene parser: off (scene_parser=none)."
        if self._parser_failed is not None:
            return f"Scene parser: none, the one on disk does not load ({self._parser_failed})."
        best = next(iter(PARSERS))
        return (
            "Scene parser: none, so copy-paste knows only the objects the segmenter marks (the "
            "salient group). For every piece of furniture: `pip install -r "
            f"requirements-torch.txt` and `staging models pull {best}` "
            f"({get_spec(best).size_mb:.0f} MB), then index again."
        )

    def segmentation_status(self) -> str:
        """One line on what ``auto`` segments with, for banners: the model on disk, or why
        there is none and what to pull (no network is touched)."""
        name = self.pretrained_segmenter_name()
        if name is not None:
            return f"Segmentation: `{name}` (pretrained, in the models folder)."
        spec = get_spec(RECOMMENDED)
        if self.store.offline:
            why = "offline mode is on (STAGING_OFFLINE / HF_HUB_OFFLINE)"
        elif self._pull_failed is not None:
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
            "weights-free `catalog` matting (less accurate), staged scenes cannot be segmented. "
            f"Fetch the model with `staging models pull {RECOMMENDED}` ({spec.size_mb:.0f} MB)."
        )

    def resolve_segment_backend(self, image: np.ndarray, backend: str | None = None) -> str:
        """Which backend ``auto`` means for this image (see :meth:`auto_segment_backend`)."""
        name = backend or self.settings.segment_backend
        if name != "auto":
            return name
        pretrained = self._pretrained_or_pull()
        if pretrained is not None:
            return pretrained  # the network handles shots and scenes alike: no test needed
        return self.auto_segment_backend(classify_staged(image).staged)

    def auto_segment_backend(self, staged: bool) -> str:
        """``auto`` for a staged scene or a plain-background shot.

        The best pretrained model on disk, for every image (ranked by measured quality:
        IS-Net > BiRefNet > U^2-Net > U^2-Net-p); fetched first on a fresh machine. Without
        one, the weights-free ``catalog`` for plain-backdrop shots; a staged scene raises
        :class:`ModelNotAvailableError` naming the model to pull: a background model cannot
        describe a room, and a silent wrong mask is worse than an error.
        """
        pretrained = self._pretrained_or_pull()
        if pretrained is not None:
            return pretrained
        if not staged:
            return "catalog"
        spec = get_spec(RECOMMENDED)
        raise ModelNotAvailableError(
            "This image is a staged scene (a product in a room), and segmenting a scene needs "
            "a pretrained model: the weights-free 'catalog' matting only separates a product "
            f"from a plain backdrop. Fetch one with:\n    staging models pull {RECOMMENDED}\n"
            f"({spec.size_mb:.0f} MB; `staging models list` shows the others)."
        )

    def segment(
        self,
        image: ImageSource,
        backend: str | None = None,
        threshold: float | None = None,
    ) -> Segmentation:
        """Segment the product: probability map, binary mask (``prob >= threshold``) and cutout.

        Maps are cached by image content and model (``<cache_dir>/masks``): asking again for
        the same image, from any process sharing the cache, does not segment it again.

        Args:
            image: path, bytes, PIL image or RGB array.
            backend: a name from :data:`staging.segment.BACKENDS`, ``rembg:<session>``, a
                ``.onnx`` path, or ``auto``/None (the engine's default, see
                :meth:`resolve_segment_backend`).
            threshold: binary-mask threshold; default the settings' (0.5, as in the paper).
        """
        rgb = self.load_image(image)
        name = self.resolve_segment_backend(at_most(rgb, WORKING_SIDE), backend)
        segmenter = self.segmenter(name)
        # A big photo is segmented at the backend's bounded size (none for a fixed-input net).
        working = rgb if segmenter.max_side is None else at_most(rgb, segmenter.max_side)
        key = image_key(rgb)
        model = f"{segmenter.name}@{segmenter.cache_tag}"
        if working is not rgb:  # maps of a shrunk copy: their own cache entry
            model += f"@{segmenter.max_side}"
        cached = self.mask_cache.get(model, key)
        if cached is None:
            prob = np.clip(segmenter.predict(working).astype(np.float32, copy=False), 0.0, 1.0)
            background = segmenter.background(working)
            self.mask_cache.put(model, key, prob, background)
        else:
            prob, background = cached
        prob, background = to_photo_size(prob, background, rgb.shape[:2])
        return Segmentation(
            image=rgb,
            prob=prob,
            backend=segmenter.name,
            threshold=self.settings.threshold if threshold is None else threshold,
            background_estimate=background,
        )

    # -- embeddings -----------------------------------------------------------------------------
    def embedder(self, name: str | None = None) -> Embedder:
        """The loaded embedder called ``name`` (None: the weights-free default; ``best``: the
        best one whose weights are on disk)."""
        from staging.embed import DEFAULT, best_available, create_embedder

        if name == "best":
            name = best_available(self.runtime)
        name = name or DEFAULT
        return self._cached("embed", name, lambda: create_embedder(name, self.runtime))

    def embed(
        self,
        image: ImageSource,
        embedder: str | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Unit-norm embedding of the product (float32 vector), background removed.

        As in the paper, the product region is embedded without its background: pass the
        product ``mask`` (bool HxW) or let :meth:`segment` find it.
        """
        rgb = self.load_image(image)
        if mask is None:
            mask = self.segment(rgb).mask
        return self.embedder(embedder).embed(rgb, mask)

    # -- prompts and the prompt bandit ---------------------------------------------------------
    def prompt_library(self, path: str | os.PathLike | None = None) -> PromptLibrary:
        """The background themes: ``path``, else ``<state_dir>/prompts.yaml`` if the user made
        one, else the bundled ``assets/prompts.yaml``. Cached per file version, so an edited
        file is picked up by the next call."""
        from staging.generate.prompts import library_path, load_library

        file = library_path(path, self.settings.state_dir)
        stamp = file.stat().st_mtime_ns if file.is_file() else 0
        return self._cached("prompts", f"{file}@{stamp}", lambda: load_library(file))

    def prompt_bandits(self) -> BanditRegistry:
        """One LinUCB bandit per category, saved in ``<state_dir>/bandits/``."""
        from staging.generate.bandit import BanditRegistry

        folder = Path(os.fspath(self.settings.state_dir)).expanduser() / "bandits"
        return self._cached("bandits", str(folder), lambda: BanditRegistry(folder))

    def suggest_prompt(
        self,
        category: str | None,
        context: dict[str, Any] | None = None,
        interests: dict[str, float] | list[str] | str | None = None,
        *,
        seed: int | None = None,
    ) -> Suggestion:
        """The bandit's suggestion: a theme of ``category`` chosen for ``context`` (location,
        gender, interests, category, colour, placement), its prompt filled and personalised
        with ``interests`` (AdBooster; sampled by weight when ``seed`` is given), plus every
        theme's UCB score. Unknown categories use the ``default`` themes."""
        from staging.generate.bandit import suggest

        library = self.prompt_library()
        return suggest(library, self.prompt_bandits(), category, context, interests, seed=seed)

    def record_feedback(
        self,
        category: str | None,
        theme: str | int,
        context: dict[str, Any] | None,
        reward: float,
    ) -> None:
        """Teach ``category``'s bandit that ``theme`` earned ``reward`` (1 click, 0 none) in
        ``context`` (pass ``suggestion.context``), and save its state."""
        from staging.generate.bandit import record_feedback

        library, bandits = self.prompt_library(), self.prompt_bandits()
        record_feedback(library, bandits, category, theme, context, reward)

    # -- inpainting -----------------------------------------------------------------------------
    def resolve_inpaint_backend(self, backend: str | None = None) -> str:
        """The inpainting backend ``backend`` names: itself, or for ``auto``/None the best fill
        on disk (:func:`staging.inpaint.best_available`: ``sd`` on CUDA with its weights, else
        ``lama`` once pulled, else ``structure``). Loads nothing, touches no network: what to
        report as the backend that ran."""
        from staging.inpaint import AUTO, best_available

        name = backend or AUTO
        return best_available(self.runtime) if name == AUTO else name

    def inpainter(self, backend: str | None = None) -> Inpainter:
        """The loaded inpainting backend called ``backend`` (``auto``/None: see
        :meth:`resolve_inpaint_backend`); its ``.name`` says which it is."""
        from staging.inpaint import create_inpainter

        name = self.resolve_inpaint_backend(backend)
        return self._cached("inpaint", name, lambda: create_inpainter(name, self.runtime))

    def inpaint(
        self,
        image: ImageSource,
        hole: np.ndarray | ImageSource,
        backend: str | None = None,
    ) -> np.ndarray:
        """``image`` with the ``hole`` filled; every pixel outside the hole comes back bit-exact.

        Args:
            image: path, bytes, PIL image or RGB array.
            hole: bool HxW mask (True = fill; 0/255 or float masks work too), or a mask file.
            backend: a name from :data:`staging.inpaint.BACKENDS` (``structure``, ``telea``,
                ``ns``, ``lama``, ``sd``, ...); ``auto``/None: the best fill on disk
                (:meth:`resolve_inpaint_backend` says which).
        """
        from staging.io import load_mask

        rgb = self.load_image(image)
        if not isinstance(hole, np.ndarray):
            size = (rgb.shape[1], rgb.shape[0])
            hole = load_mask(hole, size=size, max_pixels=self.settings.max_pixels) >= 0.5
        return self.inpainter(backend).inpaint(rgb, hole)

    # -- catalog index and retrieval -----------------------------------------------------------
    def index(self, path: str | os.PathLike | CatalogIndex) -> CatalogIndex:
        """The catalog index in folder ``path`` (built by ``staging index``), opened once and
        reused; it notices later updates by itself."""
        from staging.catalog import CatalogIndex

        if isinstance(path, CatalogIndex):
            return path
        key = str(Path(os.fspath(path)).expanduser().resolve())
        return self._cached("index", key, lambda: CatalogIndex.open(key))

    def update_index(
        self,
        index: str | os.PathLike | CatalogIndex,
        folder: str | os.PathLike,
        csv: str | os.PathLike | None = None,
        embedder: str | None = None,
        progress: bool = True,
        analyse_scenes: bool = True,
        **options: Any,
    ) -> UpdateReport:
        """Build or update the catalog index in folder ``index`` from the images in ``folder``
        (``staging index``): staged test, product mask and embedding per image.

        The index is handed this engine's embedder, segmenter and loader
        (:class:`~staging.catalog.IndexTools`). ``embedder``: default the index's own, or
        :data:`staging.embed.DEFAULT` for a new one. ``analyse_scenes``: then analyse the
        staged scenes for copy-paste (:meth:`analyse_scenes`). ``options``:
        ``category_column``, ``batch_size``, ``workers`` (see :meth:`CatalogIndex.update`).
        """
        from staging.catalog import CatalogIndex, IndexTools

        if not isinstance(index, CatalogIndex):
            CatalogIndex.open(index, create=True).close()
        catalog = self.index(index)
        catalog.check_embedder(embedder)
        notice = None
        if self.settings.segment_backend == "auto" and not self.can_segment_scenes():
            notice = (
                "No pretrained segmentation model on disk: staged scenes without a mask in the "
                "CSV are skipped, product shots use the weights-free 'catalog' matting. Fetch "
                f"one with `staging models pull {RECOMMENDED}` "
                f"({get_spec(RECOMMENDED).size_mb:.0f} MB)."
            )
        tools = IndexTools(
            embedder=self.embedder(embedder or catalog.embedder_name),
            segment=self._segment_for_index,
            load=self.load_image,
            max_pixels=self.settings.max_pixels,
            threads=self.settings.threads,
            notice=notice,
        )
        report = catalog.update(tools, folder, csv=csv, progress=progress, **options)
        if analyse_scenes:
            self.analyse_scenes(catalog, progress=progress)
        return report

    def index_uploads(
        self,
        index: str | os.PathLike,
        files: list[str | os.PathLike],
        progress: bool = True,
    ) -> UpdateReport:
        """Add uploaded room photos (files, or zips of them, and at most one CSV) to the index
        in folder ``index``: they are copied into ``<index>/images/`` within the limits of
        :mod:`staging.catalog.uploads`, then indexed (:meth:`update_index`). Files that cannot
        be used are in the report's ``failed`` by file name with their reason (and not kept);
        an upload with no usable image is an error."""
        from staging.catalog.uploads import gather_uploads

        folder = Path(os.fspath(index)).expanduser() / "images"
        gathered = gather_uploads(files, folder)
        report = self.update_index(index, folder, csv=gathered.csv, progress=progress)
        for path, _ in report.failed:  # an unreadable upload is listed once, not kept
            if Path(path).parent == folder:
                Path(path).unlink(missing_ok=True)
        # By file name: the client uploaded names, and must not learn the server's folders.
        report.failed = gathered.rejected + [(Path(p).name, why) for p, why in report.failed]
        return report

    def delete_index(self, index: str | os.PathLike) -> None:
        """Close the index in folder ``index`` and delete the folder, uploaded images
        included (an index built from a folder of yours leaves that folder alone)."""
        import shutil

        path = Path(os.fspath(index)).expanduser().resolve()
        if not (path / "catalog.sqlite").is_file():
            raise StagingError(f"No catalog index in '{path.name}' to delete.")
        with self._cache_lock:
            opened = self._models.pop(("index", str(path)), None)
        if opened is not None:
            opened.close()
        shutil.rmtree(path)

    def analyse_scenes(
        self,
        index: str | os.PathLike | CatalogIndex,
        max_side: int = SCENE_SIDE,
        progress: bool = True,
    ) -> int:
        """Analyse every staged scene of the index for copy-paste (its object, floor line,
        shadow and light; :mod:`staging.compose.scene`) and keep the analyses on disk, so a
        query ranks its candidates without decoding them. Done by :meth:`update_index`;
        already analysed scenes cost a hash. Returns how many scenes have an analysis."""
        from tqdm import tqdm

        done = 0
        items = self.index(index).staged_items()
        parser = self.scene_parser_name()
        for hit in tqdm(items, desc="scenes", unit="img", disable=not progress or not items):
            try:
                analysis, _ = self.scenes.of_hit(hit, max_side, parser)
            except (StagingError, OSError) as exc:  # a scene gone since: said, not fatal
                if progress:
                    tqdm.write(f"skipped {hit.path}: {exc}")
                continue
            done += analysis is not None
        return done

    def _segment_for_index(self, rgb: np.ndarray, staged: bool) -> tuple[str, np.ndarray]:
        """Like ``auto``, reusing the staged verdict the index already has: a staged image's
        product is the salient object (a pretrained net), a plain-background shot goes to
        the ``catalog`` background model."""
        backend = None
        if self.settings.segment_backend == "auto":
            backend = self.auto_segment_backend(staged)
        segmentation = self.segment(rgb, backend=backend)
        return segmentation.backend, segmentation.mask

    def search(
        self,
        image: ImageSource,
        k: int = 5,
        index: str | os.PathLike | CatalogIndex | None = None,
        staged_only: bool = True,
        category: str | None = None,
        index_type: str | None = None,
        embedder: str | None = None,
        mask: np.ndarray | None = None,
    ) -> list[Hit]:
        """The ``k`` catalog items most similar to the product in ``image`` (paper §5.3).

        The query product is segmented (or ``mask`` is used) and embedded, background removed,
        with the index's own embedder; the score is the cosine similarity.

        Args:
            index: an index folder or an open :class:`~staging.catalog.CatalogIndex`.
            staged_only: only staged catalog images (the scenes copy-paste staging reuses).
            category: only items of this category.
            index_type: ``exact``, ``hnsw`` or ``auto`` (exact below 50k vectors).
            embedder: must be the index's embedder if given (otherwise an error).
        """
        catalog, vector = self._query(index, image, mask, embedder)
        if vector is None:
            return []
        return catalog.search(
            vector, k=k, staged_only=staged_only, category=category, index_type=index_type
        )

    def _query(
        self,
        index: str | os.PathLike | CatalogIndex | None,
        image: ImageSource,
        mask: np.ndarray | None,
        embedder: str | None = None,
    ) -> tuple[CatalogIndex, np.ndarray | None]:
        """The open index and the product's embedding by its embedder (None: an empty index)."""
        if index is None:
            raise StagingError("search needs an index: pass index='path/to/index-folder'.")
        catalog = self.index(index)
        catalog.check_embedder(embedder)
        if catalog.embedder_name is None:
            return catalog, None
        catalog.check_version(self.embedder(catalog.embedder_name))
        return catalog, self.embed(image, embedder=catalog.embedder_name, mask=mask)

    def infer_product(
        self,
        image: ImageSource,
        index: str | os.PathLike | CatalogIndex,
        mask: np.ndarray | None = None,
        k: int | None = None,
    ) -> InferredProduct | None:
        """The product's kind and size as the catalog's ``k`` nearest un-staged product shots
        say (their CSV ``type`` and ``size``, a vote weighted by similarity; see
        :mod:`staging.catalog.infer`), or None when no shot has a type.

        Copy-paste calls it for a bare photo (no type, no size given); its answer and its
        confidence are in each result's ``source["product"]``.
        """
        catalog, vector = self._query(index, image, mask)
        from staging.pipelines.copy_paste import inferred

        return None if vector is None else inferred(catalog, vector, k)

    def catalog_scenes(self, index: str | os.PathLike | CatalogIndex) -> CatalogScenes:
        """What the index's staged scenes show (their objects' kinds and sizes, room types and
        contents; :mod:`staging.catalog.scenes`), built once per index version."""
        from staging.catalog.scenes import CatalogScenes

        catalog = self.index(index)
        key = (str(catalog.path), catalog.generation)
        return self._catalog_scenes.get(key, lambda: CatalogScenes.build(catalog))

    # -- copy-paste staging ----------------------------------------------------------------------
    def stage_copy_paste(
        self,
        product_image: ImageSource,
        k: int = 3,
        index: str | os.PathLike | CatalogIndex | None = None,
        mask: np.ndarray | ImageSource | None = None,
        category: str | None = None,
        shadow: bool = True,
        harmonize: bool = True,
        inpaint_backend: str | None = None,
        segment_backend: str | None = None,
        max_side: int = SCENE_SIDE,
        inpaint_side: int = 384,
        product_type: str | None = None,
        product_size: str | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> list[Staged]:
        """Stage the product into the ``k`` catalog scenes it fits best (paper §5.3).

        Similar staged scenes are retrieved, analysed (their object, floor line, feet, shadow
        and light; cached) and ranked by how well the product fits each
        (:mod:`staging.compose.fit`: similarity, how much of the old object it covers at its
        real size, whether it fits the frame, same kind). Only the chosen scenes are
        inpainted — their object and its shadow removed, cached for the next products — and
        the product is pasted at its real size on the old object's floor line, with contact
        and cast shadows, bounded tone matching and the scene's grain.

        Args:
            product_image: the un-staged product photo.
            k: how many candidates (one per scene).
            index: a catalog index folder (``staging index``) or an open index.
            mask: the product mask to use (bool, float alpha or a mask file), e.g. one
                corrected by hand; default: :meth:`segment`.
            category: only retrieve scenes of this category.
            shadow, harmonize: see :func:`staging.compose.copy_paste.paste_product`.
            inpaint_backend: the fill of removed objects; default ``auto``, the best on disk
                (:meth:`resolve_inpaint_backend`).
            max_side: scenes larger than this are worked on (and returned) at this size.
            inpaint_side: the hole is filled at this long side and scaled back up, with the
                scene's own texture copied back in.
            product_type: the product's kind (``Chair``, ``Chest of 3 drawers``): its typical
                real width when ``product_size`` is not given, and the category part of the
                fit.
            product_size: the catalog's size text (``80x78 cm``, width first). With neither
                given (a bare photo), both are read from the catalog's nearest product shots
                (:meth:`infer_product`).
            progress: called as ``progress(fraction, message)``.

        Returns:
            :class:`~staging.result.Staged` results, best fit first; ``source`` holds the
            catalog ``id``, ``path``, ``category``, ``title``, retrieval ``score`` and the
            product's real ``width_cm`` and where it came from, ``product`` (its
            ``product_type`` and ``product_size``, ``inferred_from`` ``given`` or ``catalog``,
            then with a ``confidence`` and the voting ``neighbours``), and a ``warning`` when
            the product photo had to be enlarged; ``scores`` the ``fit`` and its parts
            (``fit_similarity``, ``fit_coverage``, ``fit_scale``, ``fit_category``).
        """
        from staging.pipelines.copy_paste import CopyPastePipeline

        options = CopyPasteOptions(
            k, category, shadow, harmonize, inpaint_backend, segment_backend, max_side,
            inpaint_side, product_type, product_size,
        )  # fmt: skip
        pipeline = CopyPastePipeline(
            self.cutouts,
            lambda rgb, product_mask: self._query(index, rgb, product_mask),
            self.scenes,
            lambda: self.catalog_scenes(index),
            self.resolve_inpaint_backend,
            self.can_segment_scenes,
        )
        return pipeline(self.load_image(product_image), mask, options, progress)

    def stage_in_scene(
        self,
        product_image: ImageSource,
        scene: ImageSource,
        mask: np.ndarray | ImageSource | None = None,
        scene_mask: np.ndarray | ImageSource | None = None,
        object_at: tuple[float, float] | None = None,
        box: tuple[int, int, int, int] | None = None,
        remove: bool | None = None,
        position: tuple[float, float] | None = None,
        scale: float = 1.0,
        shadow: bool = True,
        harmonize: bool = True,
        product_type: str | None = None,
        product_size: str | None = None,
        object_size: str | None = None,
        inpaint_backend: str | None = None,
        segment_backend: str | None = None,
        max_side: int = SCENE_SIDE,
        inpaint_side: int = 384,
        object_type: str | None = None,
    ) -> Staged:
        """Stage the product into one scene the way the user wants it (copy-paste, by hand).

        Any room photo works: a copy-paste result's ``source["path"]`` (with its
        ``source["mask"]`` as ``scene_mask``) or one of the user's own. Without the hand-set
        arguments the result is what :meth:`stage_copy_paste` made of that scene. The product's
        cut-out, the scene's analysis and its clean plate are cached, so a call that only moves,
        resizes or re-shadows the product just pastes again (``staging bench restage``).

        Args:
            product_image, mask, shadow, harmonize, product_type, product_size,
            inpaint_backend, segment_backend, max_side, inpaint_side: as in
                :meth:`stage_copy_paste`.
            scene: the room photo.
            scene_mask: the scene's objects (a mask file or array); default: the segmenter's.
            object_at: ``(x, y)`` in the scene (at ``max_side``): the object there (or the
                nearest one) is the one replaced; default: the largest.
            box: ``(x0, y0, x1, y1)`` in the scene's own pixels, as a catalog row gives it (a
                copy-paste result's ``source["box"]``): the object mostly inside it is the one
                replaced.
            remove: inpaint that object away (True) or keep it and stand the product in front
                (False); default: what the fit chose (replace when the product covers most of
                it at its real size).
            position: ``(x, y)``: where the product's feet go (the middle of its bottom edge);
                default: the fit's placement.
            scale: the product's size, as a multiple of the fit's.
            object_size: the real size of the scene's object (``160x200 cm``, width first):
                it calibrates the camera height, so the product gets the size the room
                implies (see :mod:`staging.compose.scale`).
            object_type: the scene object's kind (a copy-paste result's
                ``source["object_type"]``): only one of the product's kind is replaced by
                default; default the scene parser's name for it, if any.
        """
        from staging.pipelines.in_scene import InScenePipeline

        options = InSceneOptions(
            object_at, box, remove, position, scale, shadow, harmonize, product_type,
            product_size, object_size, inpaint_backend, segment_backend, max_side, inpaint_side,
            object_type,
        )  # fmt: skip
        pipeline = InScenePipeline(self.cutouts, self.scenes, self.resolve_inpaint_backend)
        return pipeline(self.load_image(product_image), scene, mask, scene_mask, options)

    def _product_layer(
        self, rgb: np.ndarray, mask: np.ndarray | ImageSource | None, backend: str | None
    ) -> Segmentation:
        """The product's segmentation: computed, or built from a given (corrected) mask."""
        from staging.pipelines.cutout import product_layer

        settings = self.settings
        return product_layer(
            lambda image, name: self.segment(image, backend=name), rgb, mask, backend,
            settings.threshold, settings.max_pixels,
        )  # fmt: skip

    def _analysed_scene(self, scene, scene_mask, max_side, point, box) -> Analysed:
        """The scene's analysis by the current scene parser (:meth:`SceneStore.analyse`)."""
        return self.scenes.analyse(
            scene, scene_mask, max_side, point, box, self.scene_parser_name()
        )

    def _parser_config(self, name: str) -> Path | None:
        """The parser checkpoint's config file (its contents go into cache keys, so analyses
        by another checkpoint under the same name are not reused), if it is on disk."""
        folder = self.store.find(name) if name in REGISTRY else None
        return None if folder is None else Path(folder) / "config.json"

    def is_staged(self, image: ImageSource) -> StagedVerdict:
        """Is the product shown in a scene (staged) rather than on a plain background?

        Returns a verdict that is truthy when staged and carries ``.confidence``.
        """
        return classify_staged(self.load_image(image))

    # -- training data ---------------------------------------------------------------------------
    def build_dataset(
        self,
        source: str | os.PathLike,
        out: str | os.PathLike,
        holes: int = 4,
        max_side: int = 1024,
        caption_column: str | None = None,
        staged_only: bool = True,
        captions: str = "auto",
        progress: Callable[[int, int], None] | None = None,
    ) -> DatasetReport:
        """Training records from a catalog (a folder, or a CSV with an ``image`` column) for
        ``staging train``: see :mod:`staging.train.dataset`. Masks come from the default
        segmenter (cached as every mask is). Captions (``captions``): ``blip`` from the BLIP
        model (``staging models pull blip-captioning``), ``catalog`` from ``caption_column`` of
        the CSV, else its ``type`` or ``category``; ``auto`` is BLIP when it is on disk, else
        the catalog's. With ``staged_only``, images of a product on a plain background are
        listed as failed, not trained on. ``progress(done, total)``."""
        if captions not in ("auto", "blip", "catalog"):
            raise StagingError(f"captions must be auto, blip or catalog, not {captions!r}.")
        from staging.batch_unit import read_products
        from staging.catalog.csv import read_csv
        from staging.train.dataset import Record, build_dataset

        products = read_products(source)
        texts = {p.id: p.type or p.category or "" for p in products}
        if caption_column:
            rows = read_csv(source).rows
            if rows and caption_column not in rows[0]:
                raise StagingError(f"'{source}' has no column {caption_column!r}.")
            column = [(r.get(caption_column) or "").strip() for r in rows]
            texts = {p.id: text for p, text in zip(products, column, strict=True)}

        def load(path: Path) -> np.ndarray:
            rgb = self.load_image(path)
            if staged_only and not self.is_staged(rgb):
                raise StagingError("not a staged image (a product on a plain background)")
            return rgb

        def segment(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = self.segment(rgb)
            return found.mask, found.alpha

        done = 0

        def step(_: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, len(products))

        records = [Record(p.id, p.image, texts[p.id]) for p in products]
        caption = None
        if captions == "blip" or (captions == "auto" and self.store.find("blip-captioning")):
            from staging.train.caption import BlipCaptioner

            caption = BlipCaptioner(self.store.path("blip-captioning"), self.device)
        return build_dataset(records, out, load, segment, caption, holes, max_side, step)

    # -- prompt-based and vanilla staging (generated backgrounds) -------------------------------
    def generator(self, name: str | None = None) -> Generator:
        """The loaded background generator ``name`` (see :data:`staging.generate.BACKENDS`);
        None or ``auto``: the best diffusion backend whose weights are on disk, else the
        weights-free ``studio``. Loaded once per engine and reused by every call."""
        from staging.generate import create_generator, resolve

        resolved = resolve(name, self.runtime)
        return self._cached("generate", resolved, lambda: create_generator(resolved, self.runtime))

    def generation_hint(self) -> str | None:
        """For UIs: which diffusion model to pull, and how, when none is on disk (else None)."""
        from staging.generate import missing_weights_hint

        return missing_weights_hint(self.runtime)

    def generation_cache(self, folder: str | os.PathLike | bool | None = True) -> GenerationCache:
        """The generation cache in ``folder`` (True: ``<cache_dir>/generations``), opened once."""
        from staging.generate.cache import GenerationCache

        if folder is True or folder is None:
            folder = Path(self.settings.cache_dir).expanduser() / "generations"
        key = str(Path(os.fspath(folder)).expanduser().resolve())
        return self._cached("generation-cache", key, lambda: GenerationCache(key))

    def stage_prompt(
        self,
        product_image: ImageSource,
        prompt: str | None = None,
        theme: str | int | None = None,
        category: str | None = None,
        placement: Any = None,
        fill: float = 0.6,
        align: str = "center",
        margin: float = 0.05,
        seed: int = 0,
        num_images: int = 1,
        backend: str | None = None,
        mask: np.ndarray | ImageSource | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        negative_prompt: str | None = None,
        interests: Any = None,
        cache: GenerationCache | str | os.PathLike | bool | None = None,
        progress: Callable[[float, str], None] | None = None,
        segment_backend: str | None = None,
    ) -> list[Staged]:
        """Prompt-based staging (Taboola's pipeline): a generated scene around the product.

        Steps: (1) the product mask (``mask`` or :meth:`segment`); (2) the product positioned
        and scaled for each placement (``fill``, ``align``, ``margin``); (3) Canny edges plus
        the mask contour; (4) the background generated (ControlNet backends condition on the
        edges); (5) the original product cut back on top, feathered by about a pixel.

        Args:
            product_image: the product photo (path, bytes, PIL or RGB array).
            prompt: the scene prompt as it is; default: from ``theme`` and ``category``.
            theme: a theme name (or index) of the category in the prompt library, an
                interest such as ``beach``, or free scene text; default: the first theme.
            category: the product's catalog category ("Three-seat sofa" works).
            placement: a placement name (``square``, ``story``, ``leaderboard``...),
                ``"WxH"``, a ratio (``"4:5"``), a ``(w, h)`` pair, or a list of them;
                default ``square`` (1080x1080).
            seed, num_images: seeds ``seed .. seed + num_images - 1``.
            backend: ``studio``, ``sd``, ``sd2``, ``sdxl``, ``controlnet`` or None/``auto``.
            steps, guidance: diffusion settings (None: the backend's defaults).
            interests: an AdBooster interest distribution added to the prompt.
            cache: a :class:`~staging.generate.cache.GenerationCache`, a folder, True (the
                default folder) or None (no cache).
            progress: ``progress(fraction, message)``.

        Returns:
            One :class:`~staging.result.Staged` per placement and seed (placements outer),
            ``mode="prompt"``; ``source`` names the backend, model, prompt, seed, placement,
            bucket and whether the generation came from the cache.
        """
        from staging.generate.personalize import personalize
        from staging.generate.pipeline import choose_prompt

        library = self.prompt_library()
        extra = personalize(interests, library.interests).fragment if interests else None
        choice = choose_prompt(
            "prompt", prompt, theme, category, negative_prompt, library=library, extra=extra
        )
        options = GenerationOptions(
            placement, fill, align, margin, seed, num_images, backend, mask, steps, guidance,
            cache, segment_backend,
        )  # fmt: skip
        return self._generated("prompt", product_image, choice, options, progress)

    def stage_vanilla(
        self,
        product_image: ImageSource,
        category: str | None = None,
        prompt: str | None = None,
        placement: Any = None,
        fill: float = 0.6,
        align: str = "center",
        margin: float = 0.05,
        seed: int = 0,
        num_images: int = 1,
        backend: str | None = None,
        mask: np.ndarray | ImageSource | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        cache: GenerationCache | str | os.PathLike | bool | None = None,
        progress: Callable[[float, str], None] | None = None,
        segment_backend: str | None = None,
    ) -> list[Staged]:
        """Vanilla staging: the whole background generated around the product, no retrieval
        and no scene prompt — ``"a photo of a <category>"`` or, without a category, nothing
        (``prompt`` overrides). Same pipeline, arguments and results as :meth:`stage_prompt`
        (``mode="vanilla"``). The AdKDD paper's pix2pix baseline is the ``pix2pix`` backend,
        reserved until trained weights exist (it raises an error that says so).
        """
        from staging.generate.pipeline import choose_prompt

        choice = choose_prompt("vanilla", prompt, None, category, library=self.prompt_library())
        options = GenerationOptions(
            placement, fill, align, margin, seed, num_images, backend, mask, steps, guidance,
            cache, segment_backend,
        )  # fmt: skip
        return self._generated("vanilla", product_image, choice, options, progress)

    def _generated(self, mode, product_image, choice, options, progress) -> list[Staged]:
        """Vanilla or prompt staging, its prompt chosen (:mod:`staging.pipelines.generated`)."""
        from staging.generate import resolve
        from staging.pipelines.generated import GeneratedPipeline

        pipeline = GeneratedPipeline(
            lambda name: resolve(name, self.runtime),
            self.generator,
            self._product_layer,
            self.generation_cache,
            self.generation_hint,
        )
        return pipeline(mode, self.load_image(product_image), choice, options, progress)

    # -- every mode at once ---------------------------------------------------------------------
    def stage_candidates(
        self,
        product_image: ImageSource,
        k: int = 3,
        index: str | os.PathLike | CatalogIndex | None = None,
        mask: np.ndarray | ImageSource | None = None,
        product_type: str | None = None,
        product_size: str | None = None,
        category: str | None = None,
        placement: Any = None,
        seed: int = 0,
        backend: str | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> Candidates:
        """Every mode's candidates for one product, for one screen: copy-paste into the ``k``
        best scenes of ``index``, vanilla, and prompt with the theme the category's bandit
        suggests. The prompt's category is ``category``, else the kind copy-paste took the
        product for. A mode that cannot run (no index, a catalog without staged scenes) is
        listed in ``skipped`` with the reason instead of failing the others; when none runs,
        the first reason is raised. Each mode is its own call (:meth:`stage_copy_paste`,
        :meth:`stage_vanilla`, :meth:`stage_prompt`); the product is segmented once (cached).
        """
        say = progress or (lambda fraction, message: None)
        rgb = self.load_image(product_image)
        found = Candidates()

        def run(mode: str, start: float, end: float, call: Callable[..., list[Staged]]) -> None:
            def part(fraction: float, message: str) -> None:
                say(start + (end - start) * fraction, f"{mode}: {message}")

            try:
                found.results.extend(call(progress=part))
            except StagingError as exc:
                found.skipped[mode] = str(exc)

        if index is None:
            found.skipped["copy-paste"] = "no catalog index given"
        else:
            run("copy-paste", 0.0, 0.7, lambda progress: self.stage_copy_paste(
                rgb, k=k, index=index, mask=mask, product_type=product_type,
                product_size=product_size, progress=progress,
            ))  # fmt: skip
        if category is None:
            inferred = next((s.source.get("product") for s in found.results), None) or {}
            category = inferred.get("product_type") or product_type
        generation = dict(placement=placement, seed=seed, backend=backend, mask=mask)
        run("vanilla", 0.7, 0.85, lambda progress: self.stage_vanilla(
            rgb, category=category, progress=progress, **generation
        ))  # fmt: skip
        theme = self.suggest_prompt(category).theme
        run("prompt", 0.85, 1.0, lambda progress: self.stage_prompt(
            rgb, theme=theme, category=category, progress=progress, **generation
        ))  # fmt: skip
        if not found.results:
            raise StagingError(next(iter(found.skipped.values())))
        say(1.0, "done")
        return found

    # -- parallax animation ---------------------------------------------------------------------
    def parallax(
        self,
        image: ImageSource,
        out: str | os.PathLike,
        mask: np.ndarray | ImageSource | None = None,
        seconds: float = 3.0,
        fps: float = 30.0,
        motion: str = "pan",
        strength: float | None = None,
        size: str | tuple[int, int] | None = None,
        loop: bool = True,
        fit: str = "auto",
        inpaint_backend: str | None = None,
        segment_backend: str | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> ParallaxClip:
        """Write a parallax video of the product in ``image`` to ``out`` (paper §5.4).

        The product layer comes from ``mask`` (bool HxW, a float alpha, or a mask file), or
        from :meth:`segment` when none is given; the background behind it is inpainted once
        and reused by every frame. The format follows the extension: ``.mp4`` (H.264,
        yuv420p, faststart), ``.webm`` (VP9) or ``.gif``.

        Args:
            seconds, fps: clip length (``round(seconds * fps)`` frames).
            motion: ``pan``, ``zoom`` or ``orbit``.
            strength: product shift amplitude, share of the output's short side (0.04).
            size: ``"WxH"``, ``1:1``, ``4:5``, ``9:16``, ``16:9`` or None (photo's aspect,
                long side at most 1080).
            loop: one full period (seamless loop) or one sweep.
            fit: ``cover`` (crop around the product), ``pad`` (blurred background), ``auto``.
            inpaint_backend: default ``auto`` (:meth:`resolve_inpaint_backend`).
            progress: called as ``progress(fraction, message)`` while rendering.
        """
        from staging.pipelines.parallax import ParallaxPipeline

        options = ParallaxOptions(
            seconds, fps, motion, strength, size, loop, fit, inpaint_backend, segment_backend
        )
        pipeline = ParallaxPipeline(
            lambda rgb, name: self.segment(rgb, backend=name).mask,
            self.inpainter,
            self.settings.max_pixels,
        )
        return pipeline(self.load_image(image), out, mask, options, progress)
