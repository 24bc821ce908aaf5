"""The staging engine: one object that owns settings and models.

Creating an engine loads nothing heavy. Each model loads on first use, once, and is reused by
every later call, from any thread (the app shares one engine between all its tabs and
requests). Every capability is one method, so the app, the Python API, the CLI and the
service run exactly the same code. The methods are thin: each hands the engine's settings,
models and caches to the code that does the work and documents it in full: the staging modes
in :mod:`staging.pipelines` (their options in :mod:`staging.options`), what ``auto`` means
in :mod:`staging.segment.choose`. The catalog-index and prompt methods are mixins, in
:mod:`staging.engine.catalog` and :mod:`staging.engine.prompts`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staging import embed as embedders
from staging import generate as generators
from staging import inpaint as inpainters
from staging.compose.scene import SceneCache
from staging.embed.base import Embedder
from staging.engine.catalog import CatalogMethods
from staging.engine.prompts import PromptMethods
from staging.generate.cache import GenerationCache
from staging.io import ImageSource, at_most, load_image, load_mask
from staging.models import ModelStore
from staging.options import (
    CopyPasteOptions,
    GenerationOptions,
    InSceneOptions,
    ParallaxOptions,
    Progress,
)
from staging.pipelines.cache import MB, MemoryCache
from staging.pipelines.candidates import CandidatesPipeline
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
    from staging.engine.catalog import Index
    from staging.generate.base import Generator
    from staging.inpaint.base import Inpainter
    from staging.segment.parse import SceneParser
    from staging.train.dataset import DatasetReport

    Mask = np.ndarray | ImageSource | None  # bool or float (alpha) HxW, or a mask file


class StagingEngine(CatalogMethods, PromptMethods):
    """Settings plus a lazy, thread-safe model cache, with one method per capability.

    >>> engine = StagingEngine(device="cpu")          # or StagingEngine(Settings(...))
    >>> seg = engine.segment("chair.jpg")               # backend "auto"
    >>> staged = engine.stage_copy_paste("chair.jpg", index="my-index", k=5, shadow=False)

    Keyword arguments override ``STAGING_*`` environment variables, which override defaults
    (see :class:`~staging.settings.Settings`). A staging method takes its mode's options as
    one ``options=`` value or as keywords naming its fields (:mod:`staging.options`).
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self.store = ModelStore(
            settings.model_dirs, offline=settings.is_offline, allow_download=settings.allow_download
        )
        self._device: str | None = None
        self.models = ModelCache()
        # Which models ``auto`` means, and the failures that change it.
        self.segmenters = SegmenterChoice(settings, self.store)
        self.parsers = ParserChoice(settings, self.store, self.models.get, lambda: self.runtime)
        self.mask_cache = MaskCache(Path(settings.cache_dir).expanduser() / "masks")
        self.scene_cache = SceneCache(Path(settings.cache_dir).expanduser() / "scenes")
        self._catalog_scenes = MemoryCache(64 * MB)
        # The pipelines' shared state: the product cut-outs and the scenes they stage into.
        self.cutouts = Cutouts(lambda rgb, mask, backend: self._product_layer(rgb, mask, backend))
        # Late-bound (lambdas, not bound methods), so a patched engine method reaches them too.
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

    def loaded_models(self) -> list[str]:
        """Names of models currently in memory, as ``kind:name``."""
        return self.models.names()

    def load_image(self, image: ImageSource) -> np.ndarray:
        """The one image loader (path, bytes, PIL or array) with this engine's pixel limit."""
        return load_image(image, max_pixels=self.settings.max_pixels)

    # -- segmentation (which model ``auto`` means: staging.segment.choose) ----------------------
    def segmenter(self, backend: str) -> Segmenter:
        """The loaded backend called ``backend`` (not ``auto``)."""
        return self.models.get("segment", backend, lambda: create_segmenter(backend, self.runtime))

    def segment(
        self, image: ImageSource, backend: str | None = None, threshold: float | None = None
    ) -> Segmentation:
        """The product in ``image``: probability map, mask (``prob >= threshold``, default 0.5
        as in the paper) and cutout by ``backend`` (None/``auto``:
        :meth:`resolve_segment_backend`), cached by content and model in ``<cache_dir>/masks``."""
        rgb = self.load_image(image)
        name = self.resolve_segment_backend(at_most(rgb, WORKING_SIDE), backend)
        threshold = self.settings.threshold if threshold is None else threshold
        return self.mask_cache.segment(self.segmenter(name), rgb, threshold)

    def resolve_segment_backend(self, image: np.ndarray, backend: str | None = None) -> str:
        """The backend ``backend`` (None: the settings') means: a name as it is, ``auto`` as
        :meth:`auto_segment_backend` says for this image (a scene or a plain shot)."""
        return self.segmenters.resolve(image, backend)

    def auto_segment_backend(self, staged: bool) -> str:
        """``auto`` for a scene or a plain shot: the best pretrained model on disk, else
        ``backdrop`` for a shot, while a scene raises an error naming the model to pull."""
        return self.segmenters.auto(staged)

    def pretrained_segmenter_name(self) -> str | None:
        """The best pretrained segmentation backend whose weights are on disk, if any."""
        return self.segmenters.pretrained()

    def can_segment_scenes(self) -> bool:
        """Whether ``auto`` has (or will fetch on first use) a pretrained model for scenes."""
        return self.segmenters.can_segment_scenes()

    def segmentation_status(self) -> str:
        """One line for banners: what ``auto`` segments with, or what to pull (no network)."""
        return self.segmenters.status()

    def pull_model(self, name: str = RECOMMENDED, progress: bool = True) -> Path:
        """Fetch a registered model (default: the recommended segmenter) into the models
        folder, checksum verified; ``auto`` uses it from the next call."""
        return self.segmenters.pull(name, progress=progress)

    def is_staged(self, image: ImageSource) -> StagedVerdict:
        """Is the product in a scene rather than on a plain background? Truthy when staged."""
        return classify_staged(self.load_image(image))

    def scene_parser_name(self) -> str | None:
        """The scene parser copy-paste analyses scenes with: the setting's, or for ``auto`` the
        best on disk whose packages import, else None."""
        return self.parsers.name()

    def scene_parser(self) -> SceneParser | None:
        """The loaded scene parser, or None (one ``auto`` found but cannot load is warned of)."""
        return self.parsers.load(self.scene_parser_name())

    def scene_parser_status(self) -> str:
        """One line on the scene parser, for the CLI and the app: which, or what to pull."""
        return self.parsers.status()

    # -- embeddings, prompts, inpainting --------------------------------------------------------
    def embedder(self, name: str | None = None) -> Embedder:
        """The loaded embedder ``name`` (None: the weights-free default; ``best``: the best
        one whose weights are on disk)."""
        name = (
            embedders.best_available(self.runtime) if name == "best" else name
        ) or embedders.DEFAULT
        return self.models.get("embed", name, lambda: embedders.create_embedder(name, self.runtime))

    def embed(
        self, image: ImageSource, embedder: str | None = None, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Unit-norm float32 embedding of the product, its background removed as in the
        paper: by ``mask`` (bool HxW), else by :meth:`segment`'s."""
        rgb = self.load_image(image)
        mask = self.segment(rgb).mask if mask is None else mask
        return self.embedder(embedder).embed(rgb, mask)

    def resolve_inpaint_backend(self, backend: str | None = None) -> str:
        """The inpainting backend ``backend`` names: itself, or for ``auto``/None the best on
        disk; loads nothing, touches no network."""
        name = backend or inpainters.AUTO
        return inpainters.best_available(self.runtime) if name == inpainters.AUTO else name

    def inpainter(self, backend: str | None = None) -> Inpainter:
        """The loaded inpainting backend ``backend`` (``auto``/None: the best on disk)."""
        name = self.resolve_inpaint_backend(backend)
        return self.models.get(
            "inpaint", name, lambda: inpainters.create_inpainter(name, self.runtime)
        )

    def inpaint(
        self, image: ImageSource, hole: np.ndarray | ImageSource, backend: str | None = None
    ) -> np.ndarray:
        """``image`` with the ``hole`` (bool, 0/255 or float HxW, True = fill, or a mask file)
        filled by ``backend``; every pixel outside the hole comes back bit-exact."""
        rgb = self.load_image(image)
        if not isinstance(hole, np.ndarray):
            size = (rgb.shape[1], rgb.shape[0])
            hole = load_mask(hole, size=size, max_pixels=self.settings.max_pixels) >= 0.5
        return self.inpainter(backend).inpaint(rgb, hole)

    # -- staging: the steps in staging.pipelines, the options in staging.options ----------------
    def stage_copy_paste(
        self, product_image: ImageSource, *, index: Index | None = None, mask: Mask = None,
        options: CopyPasteOptions | None = None, progress: Progress | None = None, **overrides: Any,
    ) -> list[Staged]:  # fmt: skip
        """Stage the product into the ``k`` scenes of ``index`` it fits best (paper §5.3):
        retrieved, ranked by fit, cleaned and pasted in at its real size
        (:class:`~staging.pipelines.copy_paste.CopyPastePipeline`). ``options`` or keywords:
        :class:`~staging.options.CopyPasteOptions` (``k``, ``shadow``, ``product_type``, ...)."""
        options = CopyPasteOptions.build(options, overrides)
        pipeline = CopyPastePipeline(
            self.cutouts, lambda rgb, product_mask: self._query(index, rgb, product_mask),
            self.scenes, lambda: self.catalog_scenes(index), self.resolve_inpaint_backend,
            self.can_segment_scenes,
        )  # fmt: skip
        return pipeline(self.load_image(product_image), mask, options, progress)

    def stage_in_scene(
        self, product_image: ImageSource, scene: ImageSource, mask: Mask = None,
        scene_mask: Mask = None, *, options: InSceneOptions | None = None, **overrides: Any,
    ) -> Staged:  # fmt: skip
        """Stage the product into one scene by hand (the object to replace, where, how big),
        or as copy-paste would; a re-render only pastes again
        (:class:`~staging.pipelines.in_scene.InScenePipeline`). ``options`` or keywords:
        :class:`~staging.options.InSceneOptions` (``object_at``, ``position``, ``scale``, ...)."""
        options = InSceneOptions.build(options, overrides)
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
        """The loaded background generator ``name`` (None or ``auto``: the best diffusion
        backend on disk, else the weights-free ``studio``)."""
        found = generators.resolve(name, self.runtime)
        return self.models.get(
            "generate", found, lambda: generators.create_generator(found, self.runtime)
        )

    def generation_hint(self) -> str | None:
        """For UIs: which diffusion model to pull, and how, when none is on disk (else None)."""
        return generators.missing_weights_hint(self.runtime)

    def generation_cache(self, folder: str | os.PathLike | bool | None = True) -> GenerationCache:
        """The generation cache in ``folder`` (True: ``<cache_dir>/generations``), opened once."""
        if folder is True or folder is None:
            folder = Path(self.settings.cache_dir).expanduser() / "generations"
        key = str(Path(os.fspath(folder)).expanduser().resolve())
        return self.models.get("generation-cache", key, lambda: GenerationCache(key))

    def stage_prompt(
        self, product_image: ImageSource, prompt: str | None = None,
        theme: str | int | None = None, category: str | None = None, *,
        negative_prompt: str | None = None, interests: Any = None,
        options: GenerationOptions | None = None, progress: Progress | None = None,
        **overrides: Any,
    ) -> list[Staged]:  # fmt: skip
        """Prompt-based staging (Taboola's pipeline): a scene generated around the product
        from ``prompt``, or ``theme`` and ``category`` personalised with ``interests``
        (:class:`~staging.pipelines.generated.GeneratedPipeline`). ``options`` or keywords:
        :class:`~staging.options.GenerationOptions` (``placement``, ``seed``, ``mask``, ...)."""
        library = self.prompt_library()
        choice = choose("prompt", library, prompt, theme, category, negative_prompt, interests)
        return self._generated("prompt", product_image, choice, options, overrides, progress)

    def stage_vanilla(
        self, product_image: ImageSource, category: str | None = None, prompt: str | None = None,
        *, options: GenerationOptions | None = None, progress: Progress | None = None,
        **overrides: Any,
    ) -> list[Staged]:  # fmt: skip
        """Vanilla staging: the whole background generated from ``"a photo of a <category>"``
        (``prompt`` overrides), no retrieval and no scene prompt; else as :meth:`stage_prompt`."""
        choice = choose("vanilla", self.prompt_library(), prompt, None, category)
        return self._generated("vanilla", product_image, choice, options, overrides, progress)

    def _generated(self, mode, product_image, choice, options, overrides, progress) -> list[Staged]:
        """Vanilla or prompt staging, its prompt chosen (:mod:`staging.pipelines.generated`)."""
        options = GenerationOptions.build(options, overrides)
        pipeline = GeneratedPipeline(
            partial(generators.resolve, runtime=self.runtime), self.generator,
            self._product_layer, self.generation_cache, self.generation_hint,
        )  # fmt: skip
        return pipeline(mode, self.load_image(product_image), choice, options, progress)

    def stage_candidates(
        self, product_image: ImageSource, k: int = 3, index: Index | None = None,
        mask: Mask = None, product_type: str | None = None, product_size: str | None = None,
        category: str | None = None, placement: Any = None, seed: int = 0,
        backend: str | None = None, progress: Progress | None = None,
    ) -> Candidates:  # fmt: skip
        """Every mode's candidates for one screen: copy-paste into the ``k`` best scenes of
        ``index``, vanilla, and prompt with the bandit's theme; a mode that cannot run is in
        ``skipped`` with its reason (:mod:`staging.pipelines.candidates`)."""
        pipeline = CandidatesPipeline(
            self.stage_copy_paste, self.stage_vanilla, self.stage_prompt,
            lambda category: self.suggest_prompt(category).theme,
        )  # fmt: skip
        return pipeline(
            self.load_image(product_image), k=k, index=index, mask=mask,
            product_type=product_type, product_size=product_size, category=category,
            placement=placement, seed=seed, backend=backend, progress=progress,
        )  # fmt: skip

    # -- parallax animation and training data ---------------------------------------------------
    def parallax(
        self, image: ImageSource, out: str | os.PathLike, mask: Mask = None, *,
        options: ParallaxOptions | None = None, progress: Progress | None = None, **overrides: Any,
    ) -> ParallaxClip:  # fmt: skip
        """Write a parallax video of the product in ``image`` to ``out`` (paper §5.4), MP4,
        WebM or GIF by the extension (:class:`~staging.pipelines.parallax.ParallaxPipeline`).
        ``options`` or keywords: :class:`~staging.options.ParallaxOptions` (``seconds``, ...)."""
        options = ParallaxOptions.build(options, overrides)
        pipeline = ParallaxPipeline(
            lambda rgb, name: self.segment(rgb, backend=name).mask, self.inpainter,
            self.settings.max_pixels,
        )  # fmt: skip
        return pipeline(self.load_image(image), out, mask, options, progress)

    def build_dataset(
        self, source: str | os.PathLike, out: str | os.PathLike, holes: int = 4,
        max_side: int = 1024, caption_column: str | None = None, staged_only: bool = True,
        captions: str = "auto", progress: Callable[[int, int], None] | None = None,
    ) -> DatasetReport:  # fmt: skip
        """Training records from a catalog for ``staging train``: masks, captions (BLIP or the
        catalog's text), staged images only by default
        (:func:`~staging.train.dataset.catalog_dataset`)."""

        def segment(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = self.segment(rgb)
            return found.mask, found.alpha

        return catalog_dataset(
            source, out, self.load_image, self.is_staged, segment, self.store, self.device,
            holes, max_side, caption_column, staged_only, captions, progress,
        )  # fmt: skip
