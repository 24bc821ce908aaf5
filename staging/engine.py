"""The staging engine: one object that owns settings and models.

Creating an engine loads nothing heavy. Each model loads on first use, once, and is reused by
every later call, from any thread (the Gradio app shares one engine between all its tabs and
requests). Every capability is one method, so the app, the Python API and the CLI run exactly
the same code.

The methods are thin: each hands the engine's settings, models and caches to the code that
does the work, which documents its arguments in full: the staging modes in
:mod:`staging.pipelines`, which models ``auto`` means in :mod:`staging.segment.choose`, the
catalog index in :mod:`staging.catalog.tasks`, training data in :mod:`staging.train.dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from staging.catalog import CatalogIndex, IndexTools, tasks
from staging.compose.scene import SceneCache
from staging.embed.base import Embedder
from staging.io import ImageSource, at_most, load_image, load_mask
from staging.models import ModelStore
from staging.options import (
    SCENE_SIDE,
    CopyPasteOptions,
    GenerationOptions,
    InSceneOptions,
    ParallaxOptions,
    Progress,
)
from staging.pipelines.cache import MB, MemoryCache
from staging.pipelines.copy_paste import CopyPastePipeline
from staging.pipelines.cutout import Cutouts, product_layer
from staging.pipelines.generated import GeneratedPipeline, choose
from staging.pipelines.in_scene import InScenePipeline
from staging.pipelines.parallax import ParallaxPipeline
from staging.pipelines.scenes import Analysed, SceneStore
from staging.result import Candidates, Staged
from staging.runtime import ModelCache, Runtime, resolve_device
from staging.segment import RECOMMENDED, Segmentation, Segmenter, create_segmenter
from staging.segment.base import WORKING_SIDE
from staging.segment.cache import MaskCache
from staging.segment.choose import ParserChoice, SegmenterChoice
from staging.segment.staged import StagedVerdict, classify_staged
from staging.settings import Settings
from staging.train.dataset import catalog_dataset

if TYPE_CHECKING:
    from staging.animate import ParallaxClip
    from staging.catalog import Hit, UpdateReport
    from staging.catalog.infer import InferredProduct
    from staging.catalog.scenes import CatalogScenes
    from staging.generate.bandit import BanditRegistry, Suggestion
    from staging.generate.base import Generator
    from staging.generate.cache import GenerationCache
    from staging.generate.prompts import PromptLibrary
    from staging.inpaint.base import Inpainter
    from staging.segment.parse import SceneParser
    from staging.train.dataset import DatasetReport

    Index = str | os.PathLike | CatalogIndex  # an index folder, or an open index
    Mask = np.ndarray | ImageSource | None  # bool or float (alpha) HxW, or a mask file

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
        self.models = ModelCache()
        # Which models ``auto`` means, and the failures that change it.
        self.segmenters = SegmenterChoice(settings, self.store)
        self.parsers = ParserChoice(settings, self.store, self._cached, lambda: self.runtime)
        self.mask_cache = MaskCache(Path(settings.cache_dir).expanduser() / "masks")
        self.scene_cache = SceneCache(Path(settings.cache_dir).expanduser() / "scenes")
        self._catalog_scenes = MemoryCache(64 * MB)
        # The pipelines' shared state: the product cut-outs and the scenes they stage into.
        self.cutouts = Cutouts(lambda rgb, mask, backend: self._product_layer(rgb, mask, backend))
        self.scenes = SceneStore(
            lambda source: self.load_image(source), lambda image: self.segment(image).mask,
            lambda: self.scene_parser_name(), self.parsers.load, self.parsers.config,
            self.parsers.failure, lambda name: self.inpainter(name), self.scene_cache,
        )  # fmt: skip

    # -- runtime and the model cache ------------------------------------------------------------
    @property
    def device(self) -> str:
        """The device models run on (``cuda``, ``mps`` or ``cpu``), resolved on first use."""
        if self._device is None:
            self._device = resolve_device(self.settings.device)
        return self._device

    @property
    def runtime(self) -> Runtime:
        """What a backend loads with: the model store, the device, threads and LoRA."""
        return Runtime(self.store, self.device, self.settings.threads, self.settings.lora)

    def _cached(self, kind: str, name: str, factory: Callable[[], T]) -> T:
        """Build ``factory()`` once per (kind, name); concurrent callers wait for the first."""
        return self.models.get(kind, name, factory)

    def loaded_models(self) -> list[str]:
        """Names of models currently in memory, as ``kind:name``."""
        return self.models.names()

    def load_image(self, image: ImageSource) -> np.ndarray:
        """The one image loader (path, bytes, PIL or array) with this engine's pixel limit."""
        return load_image(image, max_pixels=self.settings.max_pixels)

    # -- segmentation (which model: staging.segment.choose) -------------------------------------
    def segmenter(self, backend: str) -> Segmenter:
        """The loaded backend called ``backend`` (not ``auto``)."""
        return self._cached("segment", backend, lambda: create_segmenter(backend, self.runtime))

    def segment(
        self, image: ImageSource, backend: str | None = None, threshold: float | None = None
    ) -> Segmentation:
        """The product in ``image`` (path, bytes, PIL or array): probability map, mask
        (``prob >= threshold``, default the settings' 0.5 as in the paper) and cutout, by
        ``backend`` (a name of :mod:`staging.segment`'s table; ``auto``/None:
        :meth:`resolve_segment_backend`), cached by content and model in ``<cache_dir>/masks``
        for every process sharing it (:meth:`~staging.segment.cache.MaskCache.segment`)."""
        rgb = self.load_image(image)
        name = self.resolve_segment_backend(at_most(rgb, WORKING_SIDE), backend)
        threshold = self.settings.threshold if threshold is None else threshold
        return self.mask_cache.segment(self.segmenter(name), rgb, threshold)

    def resolve_segment_backend(self, image: np.ndarray, backend: str | None = None) -> str:
        """The backend ``backend`` (None: the settings') means for this image: a name as it
        is, ``auto`` as :meth:`auto_segment_backend` says for it."""
        return self.segmenters.resolve(image, backend)

    def auto_segment_backend(self, staged: bool) -> str:
        """``auto`` for a staged scene or a plain shot: the best pretrained model on disk
        (fetched first on a fresh machine), else ``backdrop`` for a shot, while a scene raises
        an error naming the model to pull (:meth:`~staging.segment.choose.SegmenterChoice.auto`)."""
        return self.segmenters.auto(staged)

    def pretrained_segmenter_name(self) -> str | None:
        """The best pretrained segmentation backend whose weights are on disk, if any."""
        return self.segmenters.pretrained()

    def can_segment_scenes(self) -> bool:
        """Whether ``auto`` has (or will fetch on first use) a pretrained model for scenes."""
        return self.segmenters.can_segment_scenes()

    def segmentation_status(self) -> str:
        """One line on what ``auto`` segments with, for banners: the model on disk, or why
        there is none and what to pull (no network is touched)."""
        return self.segmenters.status()

    def pull_model(self, name: str = RECOMMENDED, progress: bool = True) -> Path:
        """Fetch a registered model (default: the recommended segmenter) into the models
        folder, each source in turn, checksum verified; ``auto`` uses it from the next call."""
        return self.segmenters.pull(name, progress=progress)

    def is_staged(self, image: ImageSource) -> StagedVerdict:
        """Is the product shown in a scene (staged) rather than on a plain background? A
        verdict, truthy when staged, with its ``.confidence``."""
        return classify_staged(self.load_image(image))

    def scene_parser_name(self) -> str | None:
        """The scene parser copy-paste analyses scenes with: the setting's, or for ``auto`` the
        best on disk whose packages import, else None (:mod:`staging.segment.choose`)."""
        return self.parsers.name()

    def scene_parser(self) -> SceneParser | None:
        """The loaded scene parser, or None; one that ``auto`` found but cannot load is said
        once, as a warning, and left out."""
        return self.parsers.load(self.scene_parser_name())

    def scene_parser_status(self) -> str:
        """One line on the scene parser, for the CLI and the app: which, or what to pull."""
        return self.parsers.status()

    # -- embeddings, prompts, inpainting --------------------------------------------------------
    def embedder(self, name: str | None = None) -> Embedder:
        """The loaded embedder called ``name`` (None: the weights-free default; ``best``: the
        best one whose weights are on disk)."""
        from staging.embed import DEFAULT, best_available, create_embedder

        if name == "best":
            name = best_available(self.runtime)
        name = name or DEFAULT
        return self._cached("embed", name, lambda: create_embedder(name, self.runtime))

    def embed(
        self, image: ImageSource, embedder: str | None = None, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Unit-norm embedding of the product (float32), background removed as in the paper:
        the product ``mask`` (bool HxW) given, or :meth:`segment`'s."""
        rgb = self.load_image(image)
        if mask is None:
            mask = self.segment(rgb).mask
        return self.embedder(embedder).embed(rgb, mask)

    def prompt_library(self, path: str | os.PathLike | None = None) -> PromptLibrary:
        """The background themes: ``path``, else ``<state_dir>/prompts.yaml`` if the user made
        one, else the bundled themes; cached per file version (an edit is picked up)."""
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
        self, category: str | None, context: dict[str, Any] | None = None,
        interests: dict[str, float] | list[str] | str | None = None, *, seed: int | None = None,
    ) -> Suggestion:  # fmt: skip
        """The bandit's theme of ``category`` for ``context`` (location, gender, interests,
        category, colour, placement), its prompt personalised with ``interests`` (sampled by
        weight when ``seed`` is given), and every theme's UCB score
        (:func:`staging.generate.bandit.suggest`)."""
        from staging.generate.bandit import suggest

        library = self.prompt_library()
        return suggest(library, self.prompt_bandits(), category, context, interests, seed=seed)

    def record_feedback(
        self, category: str | None, theme: str | int, context: dict[str, Any] | None, reward: float
    ) -> None:
        """Teach ``category``'s bandit that ``theme`` earned ``reward`` (1 click, 0 none) in
        ``context`` (pass ``suggestion.context``), and save its state."""
        from staging.generate.bandit import record_feedback

        library, bandits = self.prompt_library(), self.prompt_bandits()
        record_feedback(library, bandits, category, theme, context, reward)

    def resolve_inpaint_backend(self, backend: str | None = None) -> str:
        """The inpainting backend ``backend`` names: itself, or for ``auto``/None the best on
        disk (:func:`staging.inpaint.best_available`); loads nothing, touches no network."""
        from staging.inpaint import AUTO, best_available

        name = backend or AUTO
        return best_available(self.runtime) if name == AUTO else name

    def inpainter(self, backend: str | None = None) -> Inpainter:
        """The loaded inpainting backend ``backend`` (``auto``/None:
        :meth:`resolve_inpaint_backend`); its ``.name`` says which it is."""
        from staging.inpaint import create_inpainter

        name = self.resolve_inpaint_backend(backend)
        return self._cached("inpaint", name, lambda: create_inpainter(name, self.runtime))

    def inpaint(
        self, image: ImageSource, hole: np.ndarray | ImageSource, backend: str | None = None
    ) -> np.ndarray:
        """``image`` with the ``hole`` (bool, 0/255 or float HxW, True = fill, or a mask file)
        filled by ``backend`` (:data:`staging.inpaint.BACKENDS`; ``auto``/None:
        :meth:`resolve_inpaint_backend`); every pixel outside the hole comes back bit-exact."""
        rgb = self.load_image(image)
        if not isinstance(hole, np.ndarray):
            size = (rgb.shape[1], rgb.shape[0])
            hole = load_mask(hole, size=size, max_pixels=self.settings.max_pixels) >= 0.5
        return self.inpainter(backend).inpaint(rgb, hole)

    # -- the catalog index (staging.catalog.tasks) ----------------------------------------------
    def index(self, path: Index) -> CatalogIndex:
        """The catalog index in folder ``path`` (``staging index``), opened once and reused;
        it notices later updates by itself."""
        if isinstance(path, CatalogIndex):
            return path
        key = tasks.index_key(path)
        return self._cached("index", key, lambda: CatalogIndex.open(key))

    def update_index(
        self, index: Index, folder: str | os.PathLike, csv: str | os.PathLike | None = None,
        embedder: str | None = None, progress: bool = True, analyse_scenes: bool = True,
        **options: Any,
    ) -> UpdateReport:  # fmt: skip
        """Build or update the index in folder ``index`` from the images in ``folder``
        (``staging index``) with this engine's models, then analyse its staged scenes
        (:meth:`analyse_scenes`); arguments at :func:`staging.catalog.tasks.update_index`."""
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
        ``index`` and index them; unusable files are listed by name, not kept
        (:func:`staging.catalog.tasks.index_uploads`)."""
        update = partial(self.update_index, index, progress=progress)  # (folder, csv)
        return tasks.index_uploads(index, files, update)

    def delete_index(self, index: str | os.PathLike) -> None:
        """Close the index in folder ``index`` and delete the folder, uploaded images
        included (an index built from a folder of yours leaves that folder alone)."""
        tasks.delete_index(index, lambda key: self.models.pop("index", key))

    def analyse_scenes(
        self, index: Index, max_side: int = SCENE_SIDE, progress: bool = True
    ) -> int:
        """Analyse the index's staged scenes for copy-paste and keep the analyses on disk, so
        a query decodes none to rank them; returns how many have one
        (:func:`staging.catalog.tasks.analyse_scenes`)."""
        items = self.index(index).staged_items()
        parser = self.scene_parser_name()
        return tasks.analyse_scenes(
            items, lambda hit: self.scenes.of_hit(hit, max_side, parser), progress
        )

    def search(
        self, image: ImageSource, k: int = 5, index: Index | None = None,
        staged_only: bool = True, category: str | None = None, index_type: str | None = None,
        embedder: str | None = None, mask: np.ndarray | None = None,
    ) -> list[Hit]:  # fmt: skip
        """The ``k`` items of ``index`` most similar (cosine) to the product in ``image``,
        segmented (or ``mask``) and embedded by the index's embedder (paper §5.3); filters
        and ``index_type`` as :meth:`~staging.catalog.CatalogIndex.search` says."""
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
        """The product's kind and size as the catalog's nearest product shots vote
        (:mod:`staging.catalog.infer`), or None; copy-paste asks it for a bare photo."""
        from staging.pipelines.copy_paste import inferred

        catalog, vector = self._query(index, image, mask)
        return None if vector is None else inferred(catalog, vector, k)

    def catalog_scenes(self, index: Index) -> CatalogScenes:
        """What the index's staged scenes show (:mod:`staging.catalog.scenes`), built once per
        index version."""
        from staging.catalog.scenes import CatalogScenes

        catalog = self.index(index)
        key = (str(catalog.path), catalog.generation)
        return self._catalog_scenes.get(key, lambda: CatalogScenes.build(catalog))

    # -- staging (staging.pipelines) ------------------------------------------------------------
    def stage_copy_paste(
        self, product_image: ImageSource, k: int = 3, index: Index | None = None,
        mask: Mask = None, category: str | None = None, shadow: bool = True,
        harmonize: bool = True, inpaint_backend: str | None = None,
        segment_backend: str | None = None, max_side: int = SCENE_SIDE,
        inpaint_side: int = 384, product_type: str | None = None,
        product_size: str | None = None, progress: Progress | None = None,
    ) -> list[Staged]:  # fmt: skip
        """Stage the product into the ``k`` scenes of ``index`` it fits best (paper §5.3):
        retrieved, ranked by fit, cleaned and pasted into at its real size. The steps, every
        argument and the results: :class:`~staging.pipelines.copy_paste.CopyPastePipeline`."""
        options = CopyPasteOptions.of(locals())
        pipeline = CopyPastePipeline(
            self.cutouts, lambda rgb, product_mask: self._query(index, rgb, product_mask),
            self.scenes, lambda: self.catalog_scenes(index), self.resolve_inpaint_backend,
            self.can_segment_scenes,
        )  # fmt: skip
        return pipeline(self.load_image(product_image), mask, options, progress)

    def stage_in_scene(
        self, product_image: ImageSource, scene: ImageSource, mask: Mask = None,
        scene_mask: Mask = None, object_at: tuple[float, float] | None = None,
        box: tuple[int, int, int, int] | None = None, remove: bool | None = None,
        position: tuple[float, float] | None = None, scale: float = 1.0, shadow: bool = True,
        harmonize: bool = True, product_type: str | None = None,
        product_size: str | None = None, object_size: str | None = None,
        inpaint_backend: str | None = None, segment_backend: str | None = None,
        max_side: int = SCENE_SIDE, inpaint_side: int = 384, object_type: str | None = None,
    ) -> Staged:  # fmt: skip
        """Stage the product into one scene by hand (the object to replace, where, how big),
        or as copy-paste would; a re-render only pastes again. Every argument:
        :class:`~staging.pipelines.in_scene.InScenePipeline`."""
        options = InSceneOptions.of(locals())
        pipeline = InScenePipeline(self.cutouts, self.scenes, self.resolve_inpaint_backend)
        return pipeline(self.load_image(product_image), scene, mask, scene_mask, options)

    def _product_layer(self, rgb: np.ndarray, mask: Mask, backend: str | None) -> Segmentation:
        """The product's segmentation: computed, or built from a given (corrected) mask."""
        s = self.settings
        return product_layer(self.segment, rgb, mask, backend, s.threshold, s.max_pixels)

    def _analysed_scene(self, scene, scene_mask, max_side, point, box) -> Analysed:
        """The scene's analysis by the current scene parser (:meth:`SceneStore.analyse`)."""
        parser = self.scene_parser_name()
        return self.scenes.analyse(scene, scene_mask, max_side, point, box, parser)

    def generator(self, name: str | None = None) -> Generator:
        """The loaded background generator ``name`` (:data:`staging.generate.BACKENDS`; None
        or ``auto``: the best diffusion backend on disk, else the weights-free ``studio``)."""
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
        self, product_image: ImageSource, prompt: str | None = None,
        theme: str | int | None = None, category: str | None = None, placement: Any = None,
        fill: float = 0.6, align: str = "center", margin: float = 0.05, seed: int = 0,
        num_images: int = 1, backend: str | None = None, mask: Mask = None,
        steps: int | None = None, guidance: float | None = None,
        negative_prompt: str | None = None, interests: Any = None,
        cache: GenerationCache | str | os.PathLike | bool | None = None,
        progress: Progress | None = None, segment_backend: str | None = None,
    ) -> list[Staged]:  # fmt: skip
        """Prompt-based staging (Taboola's pipeline): a scene generated around the product
        from ``prompt``, or ``theme`` and ``category`` personalised with ``interests``. Steps,
        arguments, results: :class:`~staging.pipelines.generated.GeneratedPipeline`."""
        choice = choose("prompt", self.prompt_library(), prompt, theme, category, negative_prompt,
                        interests)  # fmt: skip
        options = GenerationOptions.of(locals())
        return self._generated("prompt", product_image, choice, options, progress)

    def stage_vanilla(
        self, product_image: ImageSource, category: str | None = None, prompt: str | None = None,
        placement: Any = None, fill: float = 0.6, align: str = "center", margin: float = 0.05,
        seed: int = 0, num_images: int = 1, backend: str | None = None, mask: Mask = None,
        steps: int | None = None, guidance: float | None = None,
        cache: GenerationCache | str | os.PathLike | bool | None = None,
        progress: Progress | None = None, segment_backend: str | None = None,
    ) -> list[Staged]:  # fmt: skip
        """Vanilla staging: the whole background generated around the product from
        ``"a photo of a <category>"`` (or nothing; ``prompt`` overrides), no retrieval and no
        scene prompt; as :meth:`stage_prompt` otherwise (``mode="vanilla"``)."""
        choice = choose("vanilla", self.prompt_library(), prompt, None, category)
        options = GenerationOptions.of(locals())
        return self._generated("vanilla", product_image, choice, options, progress)

    def _generated(self, mode, product_image, choice, options, progress) -> list[Staged]:
        """Vanilla or prompt staging, its prompt chosen (:mod:`staging.pipelines.generated`)."""
        from staging.generate import resolve

        pipeline = GeneratedPipeline(
            lambda name: resolve(name, self.runtime), self.generator, self._product_layer,
            self.generation_cache, self.generation_hint,
        )  # fmt: skip
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
        the first reason is raised (:mod:`staging.pipelines.candidates`). Each mode is its
        own engine call; the product is segmented once (cached).
        """
        from staging.pipelines.candidates import CandidatesPipeline

        pipeline = CandidatesPipeline(
            self.stage_copy_paste, self.stage_vanilla, self.stage_prompt,
            lambda category: self.suggest_prompt(category).theme,
        )  # fmt: skip
        return pipeline(
            self.load_image(product_image), k=k, index=index, mask=mask,
            product_type=product_type, product_size=product_size, category=category,
            placement=placement, seed=seed, backend=backend, progress=progress,
        )  # fmt: skip

    # -- parallax animation ---------------------------------------------------------------------
    def parallax(
        self, image: ImageSource, out: str | os.PathLike, mask: Mask = None,
        seconds: float = 3.0, fps: float = 30.0, motion: str = "pan",
        strength: float | None = None, size: str | tuple[int, int] | None = None,
        loop: bool = True, fit: str = "auto", inpaint_backend: str | None = None,
        segment_backend: str | None = None, progress: Progress | None = None,
    ) -> ParallaxClip:  # fmt: skip
        """Write a parallax video of the product in ``image`` to ``out`` (paper §5.4), MP4,
        WebM or GIF by the extension. Every argument:
        :class:`~staging.pipelines.parallax.ParallaxPipeline`."""
        options = ParallaxOptions.of(locals())
        pipeline = ParallaxPipeline(
            lambda rgb, name: self.segment(rgb, backend=name).mask, self.inpainter,
            self.settings.max_pixels,
        )  # fmt: skip
        return pipeline(self.load_image(image), out, mask, options, progress)

    # -- training data --------------------------------------------------------------------------
    def build_dataset(
        self, source: str | os.PathLike, out: str | os.PathLike, holes: int = 4,
        max_side: int = 1024, caption_column: str | None = None, staged_only: bool = True,
        captions: str = "auto", progress: Callable[[int, int], None] | None = None,
    ) -> DatasetReport:  # fmt: skip
        """Training records from a catalog for ``staging train``: masks by the default
        segmenter, captions by BLIP or the catalog's text, staged images only by default
        (every argument: :func:`staging.train.dataset.catalog_dataset`)."""

        def segment(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = self.segment(rgb)
            return found.mask, found.alpha

        return catalog_dataset(
            source, out, self.load_image, self.is_staged, segment, self.store, self.device,
            holes, max_side, caption_column, staged_only, captions, progress,
        )  # fmt: skip
