"""Copy-paste staging (Ku et al. §5.3): the product pasted into the catalog scenes it fits.

One call of :class:`CopyPastePipeline` runs these steps, in this order:

1. **cut out** the product (its segmentation, cropped; cached per photo and mask);
2. **embed** it once, with the index's embedder, for both the kind vote and the search;
3. **know the product**: its kind and size as given, or for a bare photo as the catalog's
   nearest product shots say (:mod:`staging.catalog.infer`), and so its real width;
4. **retrieve** the most similar staged scenes of the catalog;
5. **rank fits**: each scene's analysis (cached, usually from disk) and how well the product
   fits it (:mod:`staging.compose.fit`: similarity, coverage of the old object at real size,
   the frame, same kind, room);
6. **clean plates** for the ``k`` best: their object and its shadow inpainted away (cached
   for the next products), unless the product goes in front of it;
7. **paste** the product at its real size on the old object's floor line, with shadows,
   tone matching and grain, and say where everything came from.

The pipeline gets its components from whoever builds it (the engine); it never imports the
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.errors import StagingError
from staging.options import CopyPasteOptions, Progress, no_progress
from staging.pipelines.cutout import Cutout, Cutouts
from staging.pipelines.scenes import CatalogScene, SceneStore
from staging.result import Staged

if TYPE_CHECKING:
    from staging.catalog import CatalogIndex, Hit
    from staging.catalog.infer import InferredProduct
    from staging.catalog.scenes import CatalogScenes, SceneObject
    from staging.compose.align import Alignment
    from staging.compose.copy_paste import Pasted
    from staging.compose.fit import Fit
    from staging.compose.scene import SceneAnalysis

Query = Callable[[np.ndarray, np.ndarray], "tuple[CatalogIndex, np.ndarray | None]"]
Width = tuple[float, str] | None  # the product's real width in cm and where it came from


@dataclass(frozen=True)
class Product:
    """What the product is: its kind and size, and where that came from (``describe()`` is
    what results carry as ``source["product"]``)."""

    description: dict[str, Any]

    @property
    def type(self) -> str | None:
        return self.description["product_type"]

    @property
    def size(self) -> str | None:
        return self.description["product_size"]


@dataclass(frozen=True)
class Candidate:
    """One retrieved scene the product fits: the fit, the hit, the scene's analysis and what
    the catalog says its object is."""

    fit: Fit
    hit: Hit
    analysis: SceneAnalysis
    shown: SceneObject | None


@dataclass(eq=False)
class CopyPastePipeline:
    """Copy-paste staging, one step per method (see the module doc).

    Args:
        cut_out: the product's cut-out (step 1).
        query: ``(index, embedding or None)`` of a product photo and mask (step 2; None: the
            index is empty).
        scenes: the scene store (analyses and clean plates).
        catalog_scenes: what the index's scenes show (objects, rooms).
        resolve_inpaint: the inpainting backend a name means (``auto`` resolved).
        can_segment_scenes: whether scenes could be segmented at indexing (for the error
            that says why an index has none).
    """

    cut_out: Cutouts
    query: Query
    scenes: SceneStore
    catalog_scenes: Callable[[], CatalogScenes]
    resolve_inpaint: Callable[[str | None], str]
    can_segment_scenes: Callable[[], bool]

    def __call__(
        self,
        rgb: np.ndarray,
        mask: Any,
        options: CopyPasteOptions,
        progress: Progress | None = None,
    ) -> list[Staged]:
        """Stage the product photo ``rgb`` into the ``options.k`` catalog scenes it fits best.

        Args:
            rgb: the un-staged product photo.
            mask: the product mask to use (bool, float alpha or a mask file), e.g. one
                corrected by hand; None: the product's segmentation.
            options: (:class:`~staging.options.CopyPasteOptions`)

                * ``k``: how many candidates (one per scene);
                * ``category``: only retrieve scenes of this category;
                * ``shadow``, ``harmonize``: see :func:`staging.compose.copy_paste.paste_product`;
                * ``inpaint_backend``: the fill of removed objects; default ``auto``, the best
                  on disk (:meth:`~staging.StagingEngine.resolve_inpaint_backend`);
                * ``segment_backend``: the product's segmenter (None: the default);
                * ``max_side``: scenes larger than this are worked on (and returned) at this
                  size;
                * ``inpaint_side``: the hole is filled at this long side and scaled back up,
                  with the scene's own texture copied back in;
                * ``product_type``: the product's kind (``Chair``, ``Chest of 3 drawers``): its
                  typical real width when ``product_size`` is not given, and the category
                  part of the fit;
                * ``product_size``: the catalog's size text (``80x78 cm``, width first). With
                  neither given (a bare photo), both are read from the catalog's nearest
                  product shots (:mod:`staging.catalog.infer`).
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
        from staging.compose.scale import SizePriors

        report = progress or no_progress
        # 1. cut out the product
        report(0.0, "segmenting the product")
        cutout = self.cut_out(rgb, mask, options.segment_backend)
        # 2. embed it, once for both the kind vote and the search
        catalog, vector = self.query(rgb, cutout.mask)
        # 3. know the product: given, or as the catalog's product shots say
        product = self.know_product(catalog, vector, options, report)
        width = SizePriors().width(product.type, product.size)
        inpaint_name = self.resolve_inpaint(options.inpaint_backend)  # once: what runs, said
        # 4. retrieve similar staged scenes
        report(0.1, "retrieving similar staged scenes")
        hits = self.retrieve(catalog, vector, options)
        # 5. rank how well the product fits each
        described = self.catalog_scenes()
        parser = self.scenes.parser_name()  # once per call, not per scene
        candidates, skipped = self.rank_fits(
            hits, cutout, product, width, described, parser, options, report
        )
        # 6-7. clean plates of the best, and the product pasted into them
        results = []
        for candidate in candidates[: options.k]:
            report(0.4 + 0.6 * len(results) / options.k, f"staging into {candidate.hit.id}")
            results.append(
                self.stage(candidate, cutout, product, width, described, parser,
                           inpaint_name, options)
            )  # fmt: skip
        if not results:
            raise StagingError(
                "None of the similar catalog scenes can take the product: "
                + "; ".join(skipped[:3])
                + ". Index more staged photos of products standing on a floor."
            )
        report(1.0, "done")
        return results

    def know_product(
        self,
        catalog: CatalogIndex,
        vector: np.ndarray | None,
        options: CopyPasteOptions,
        report: Progress,
    ) -> Product:
        """Step 3: the product's kind and size as given; with neither (a bare photo), as the
        catalog's nearest product shots say."""
        product = {
            "product_type": options.product_type,
            "product_size": options.product_size,
            "inferred_from": "given",
        }
        if options.product_type is None and options.product_size is None:
            report(0.05, "reading the product's kind from the catalog")
            found = None if vector is None else inferred(catalog, vector)
            product = found.describe() if found else product | {"inferred_from": None}
        return Product(product)

    def retrieve(
        self, catalog: CatalogIndex, vector: np.ndarray | None, options: CopyPasteOptions
    ) -> list[Hit]:
        """Step 4: the staged scenes most similar to the product (a few times ``k``, as some
        will not take it); an error that says what to index when there are none."""
        hits = [] if vector is None else catalog.search(
            vector, k=max(12, 4 * options.k), staged_only=True, category=options.category
        )  # fmt: skip
        if hits:
            return hits
        from staging.models import get_spec
        from staging.segment import RECOMMENDED

        where = f" of category {options.category!r}" if options.category else ""
        why = "Index a catalog that includes photos of products in rooms (staging index)."
        if not self.can_segment_scenes():  # its scenes were skipped, not missing
            why = (
                "Scenes are skipped at indexing while no pretrained segmentation model is "
                f"on disk: fetch one with `staging models pull {RECOMMENDED}` "
                f"({get_spec(RECOMMENDED).size_mb:.0f} MB), or give the scenes' masks in "
                "the catalog CSV, then run staging index again."
            )
        raise StagingError(
            f"The catalog index has no staged images{where} to copy a background from. {why}"
        )

    def rank_fits(
        self,
        hits: list[Hit],
        cutout: Cutout,
        product: Product,
        width: Width,
        described: CatalogScenes,
        parser: str | None,
        options: CopyPasteOptions,
        report: Progress,
    ) -> tuple[list[Candidate], list[str]]:
        """Step 5: the scenes that can take the product, best fit first, and why the others
        cannot (``"<id>: <problem>"``)."""
        from staging.compose.copy_paste import scene_problem
        from staging.compose.fit import place_product
        from staging.compose.scale import width_from_size

        candidates, skipped = [], []
        for i, hit in enumerate(hits):
            report(0.1 + 0.3 * i / len(hits), f"fitting the product into {hit.id}")
            try:
                analysis, problem = self.scenes.of_hit(hit, options.max_side, parser)
            except StagingError as exc:  # this scene's file or catalog row is wrong
                analysis, problem = None, str(exc)
            if problem is None:
                problem = scene_problem(analysis.mask)
            if problem is not None:
                skipped.append(f"{hit.id}: {problem}")
                continue
            shown = described.object(hit)  # what the scene's object is, as the catalog says
            fit = place_product(
                cutout.alpha, analysis, width[0] if width else None, hit.score, product.type,
                shown.type if shown else analysis.category,
                width_from_size(shown.size if shown else None),
                room_fit=described.room_fit(product.type, hit),
            )  # fmt: skip
            if fit.problem is not None:
                skipped.append(f"{hit.id}: {fit.problem}")
                continue
            candidates.append(Candidate(fit, hit, analysis, shown))
        candidates.sort(key=lambda c: -c.fit.score)
        return candidates, skipped

    def stage(
        self,
        candidate: Candidate,
        cutout: Cutout,
        product: Product,
        width: Width,
        described: CatalogScenes,
        parser: str | None,
        inpaint_name: str,
        options: CopyPasteOptions,
    ) -> Staged:
        """Steps 6 and 7 for one scene: its clean plate (when the product replaces its
        object) and the product pasted into it, with where everything came from."""
        from staging.compose.copy_paste import paste_product

        fit, hit, analysis, shown = (
            candidate.fit,
            candidate.hit,
            candidate.analysis,
            candidate.shown,
        )
        files = CatalogScene.of(hit)
        scene = self.scenes.image(files.path, options.max_side)
        if fit.mode == "replace":
            key = self.scenes.key(files.path, files.mask, options.max_side, None, files.box, parser)
            plate = self.scenes.clean_plate(
                key, scene, analysis, inpaint_name, options.inpaint_side
            )
        else:  # inserted in front of the old object: nothing is removed
            plate = scene
        pasted = paste_product(
            plate, analysis, cutout.colour, cutout.alpha, fit.alignment, options.shadow,
            options.harmonize,
        )  # fmt: skip
        source = {
            "id": hit.id,
            "path": str(hit.path),
            "mask": None if files.mask is None else str(files.mask),
            "category": hit.category,
            "title": hit.title,
            "score": round(float(hit.score), 4),
            "segment_backend": cutout.backend,
            "inpaint_backend": inpaint_name if fit.mode == "replace" else None,
            "placement": fit.mode,
            "feet": feet(fit.alignment),
            "product": product.description,
        }
        if files.box is not None:  # the catalog row's: stage_in_scene(box=) re-renders it
            source["box"] = list(files.box)
        if shown is not None:  # object_type, object_size: stage_in_scene takes them
            source |= shown.describe()
        elif analysis.category:
            source["object_type"] = analysis.category
        if room := described.room(hit):
            source["room"] = room
        return staged_result(pasted, fit, fit.alignment, source, width)


def staged_result(
    pasted: Pasted, fit: Fit, alignment: Alignment, source: dict[str, Any], width: Width
) -> Staged:
    """A copy-paste :class:`Staged`: the paste, its provenance with the real width (and where
    it came from) and an enlargement warning, and the fit with its parts."""
    from staging.compose.copy_paste import upscale_warning

    if width is not None:
        source["width_cm"], source["width_from"] = width
    if fit.camera_height_cm is not None:  # calibrated on the scene's object of known size
        source["camera_height_cm"] = round(fit.camera_height_cm, 1)
    if warning := upscale_warning(alignment.scale):
        source["warning"] = warning
    parts = {f"fit_{name}": round(value, 4) for name, value in fit.parts.items()}
    return Staged(
        image=pasted.image,
        alpha=pasted.alpha,
        mode="copy-paste",
        ssim=pasted.ssim,
        source=source,
        scores={"fit": round(fit.score, 4)} | parts | pasted.scores,
    )


def inferred(
    catalog: CatalogIndex, vector: np.ndarray, k: int | None = None
) -> InferredProduct | None:
    """What the ``k`` nearest product shots of ``catalog`` say the product is (kind, size)."""
    from staging.catalog.infer import NEIGHBOURS, infer_product

    shots = catalog.search(vector, k=k or NEIGHBOURS, staged_only=False, shots_only=True)
    return infer_product(shots)


def feet(alignment: Alignment) -> list[float]:
    """Where a placed product's feet are (x, y in the scene): the middle of its box's bottom."""
    x0, _, x1, y1 = alignment.box
    return [round((x0 + x1) / 2, 1), round(y1, 1)]
