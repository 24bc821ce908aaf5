"""The scenes copy-paste stages into: their files, analyses and clean plates, in one place.

A scene is a room photo with its objects (a mask file, or what the segmenter finds). Staging
into it needs, in turn: the image at its working size, its analysis (the object to replace,
the floor line, shadow and light; :mod:`staging.compose.scene`), and for a replacement its
clean plate (the object and its shadow inpainted away). All three are reused by every product
staged into the scene and by every re-render of one placement, so the :class:`SceneStore`
keeps them in memory (bounded by bytes) and the analyses of scenes with a mask file on disk
too (``<cache_dir>/scenes``, by content: a copied catalog hits).

The store gets its tools from whoever builds it (the engine): how to load and segment an
image, which scene parser to use and how to load it. It never imports the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from staging.compose.scene import ANALYSIS_VERSION, SceneAnalysis, SceneCache
from staging.errors import StagingError
from staging.io import ImageSource, at_most
from staging.pipelines.cache import MB, MemoryCache, content_digest, content_key

if TYPE_CHECKING:
    from staging.catalog import Hit
    from staging.inpaint.base import Inpainter
    from staging.segment.parse import SceneParse, SceneParser

Box = tuple[int, int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class CatalogScene:
    """A catalog hit's files: its image, its stored object mask (None when there is none)
    and the box of the object to replace from its catalog row (``box``: ``x0,y0,x1,y1`` in
    the image's pixels; None when not given)."""

    path: Path
    mask: Path | None
    box: Box | None

    @classmethod
    def of(cls, hit: Hit) -> CatalogScene:
        path = Path(hit.path)
        if not path.is_file():
            raise StagingError(f"Catalog image {path} is missing: re-run staging index.")
        mask = Path(hit.mask) if hit.mask is not None and Path(hit.mask).is_file() else None
        box = None
        if text := (hit.metadata.get("box") or "").strip():
            try:
                box = tuple(int(round(float(v))) for v in text.split(","))
            except (ValueError, OverflowError):
                box = ()
            if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
                raise StagingError(f"box {text!r} of {hit.id} is not x0,y0,x1,y1 in pixels.")
        return cls(path, mask, box)


class Analysed(NamedTuple):
    """A scene's analysis, or None and the ``problem`` that says why there is none."""

    analysis: SceneAnalysis | None
    problem: str | None = None


@dataclass(eq=False)
class SceneStore:
    """Scene images, analyses, parses and clean plates, cached by the scene's content.

    Args:
        load_image: the engine's image loader (its pixel limit).
        segment: the objects of a scene image (bool HxW) when no mask is given.
        parser_name: which scene parser analyses scenes now (None: none).
        load_parser: the loaded parser of that name, or None when it cannot be used.
        parser_config: the parser checkpoint's config file (its contents go into disk keys).
        parser_failed: told ``(why, what, exc)`` when a parser fails on a scene; returns
            None to go on without it (or raises).
        inpainter: the loaded inpainting backend of a (resolved) name.
        disk: the on-disk analysis cache.
    """

    load_image: Callable[[ImageSource], np.ndarray]
    segment: Callable[[np.ndarray], np.ndarray]
    parser_name: Callable[[], str | None]
    load_parser: Callable[[str], SceneParser | None]
    parser_config: Callable[[str], Path | None]
    parser_failed: Callable[[str, str, Exception], None]
    inpainter: Callable[[str], Inpainter]
    disk: SceneCache
    images: MemoryCache = field(default_factory=lambda: MemoryCache(96 * MB), init=False)
    analyses: MemoryCache = field(default_factory=lambda: MemoryCache(256 * MB), init=False)
    parses: MemoryCache = field(default_factory=lambda: MemoryCache(64 * MB), init=False)
    plates: MemoryCache = field(default_factory=lambda: MemoryCache(96 * MB), init=False)

    def key(
        self,
        scene: ImageSource,
        scene_mask: ImageSource | None,
        max_side: int,
        point: Point | None,
        box: tuple[int, ...] | None,
        parser: str | None,
    ) -> tuple:
        """The memory key of one scene's analysis (and plate): a parser pulled mid-session
        means another key, so the scene is analysed anew."""
        return (content_key(scene), content_key(scene_mask), max_side, point, box, parser)

    def image(self, scene: ImageSource, max_side: int) -> np.ndarray:
        """The scene at its working size (long side at most ``max_side``)."""
        key = (content_key(scene), max_side)
        return self.images.get(key, lambda: at_most(self.load_image(scene), max_side))

    def of_hit(self, hit: Hit, max_side: int, parser: str | None) -> Analysed:
        """The analysis of a catalog hit's scene (see :meth:`analyse`)."""
        files = CatalogScene.of(hit)
        return self.analyse(files.path, files.mask, max_side, None, files.box, parser)

    def analyse(
        self,
        scene: ImageSource,
        scene_mask: ImageSource | None,
        max_side: int,
        point: Point | None,
        box: tuple[int, ...] | None,
        parser: str | None,
    ) -> Analysed:
        """The analysis of a scene at ``max_side`` by ``parser`` (a name, or None).

        The objects are the given mask's or the segmenter's; the one to replace is their
        largest part, or the part at ``point``, or the largest part inside ``box`` (in the
        scene's own pixels, before resizing to ``max_side``). Kept in memory by file and
        modification time, and on disk by content for a scene with a mask file, as every
        indexed scene has: indexing analyses a catalog's scenes once, and ranking a query's
        candidates then decodes none of them.
        """
        from staging.compose.scene import analyse_scene
        from staging.io import load_mask

        def analyse() -> Analysed:
            disk_key = None
            if point is None and scene_mask is not None:
                where = [box] if box else []  # keys without a box stay as they were
                if parser is not None:
                    where += [("parser", parser), self.parser_config(parser)]
                disk_key = content_digest(ANALYSIS_VERSION, max_side, scene, scene_mask, *where)
                if (cached := self.disk.get(disk_key)) is not None:
                    return Analysed(cached)
            image = self.image(scene, max_side)
            size = (image.shape[1], image.shape[0])
            if scene_mask is not None:
                objects = load_mask(scene_mask, size=size) >= 0.5
            else:
                objects = self.segment(image)
            parse = None
            if parser is not None and (loaded := self.load_parser(parser)) is not None:
                # one parse per scene, however many clicks
                parse = self.parse(
                    loaded, image, self.key(scene, scene_mask, max_side, None, None, parser)
                )
            if parser is not None and parse is None:  # it failed: not under its key
                disk_key = None
            if not objects.any() and (point is None or parse is None):
                return Analysed(None, "no object found in the scene")
            boxed = None
            if box is not None and point is None:  # in the scene's own pixels, upright
                factor = image.shape[1] / image_width(scene)
                boxed = tuple(int(round(v * factor)) for v in box)
            try:
                analysis = analyse_scene(image, objects, point, boxed, parse)
            except ValueError:
                where = f" inside its catalog box {list(box)}" if boxed else " at the click"
                return Analysed(None, "no object found" + where)
            if disk_key is not None:
                self.disk.put(disk_key, analysis)
            return Analysed(analysis)

        key = self.key(scene, scene_mask, max_side, point, box, parser)
        return self.analyses.get(key, analyse)

    def parse(self, parser: SceneParser, image: np.ndarray, key: tuple) -> SceneParse | None:
        """``parser``'s parse of a scene, once per scene; a parser that fails on it (out of
        memory, a broken install) is reported to ``parser_failed`` (None: go on without)."""
        try:
            return self.parses.get((*key, parser.name), lambda: parser.parse(image))
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, MemoryError, ...
            return self.parser_failed(f"{parser.name}: {type(exc).__name__}: {exc}", "failed", exc)

    def clean_plate(
        self,
        scene_key: tuple,
        scene: np.ndarray,
        analysis: SceneAnalysis,
        inpaint_backend: str,
        inpaint_side: int,
    ) -> np.ndarray:
        """The scene with its object and shadow inpainted away by ``inpaint_backend`` (a
        resolved name), the hole filled at ``inpaint_side``; cached like the analysis."""
        from staging.compose import copy_paste

        inpainter = self.inpainter(inpaint_backend)

        def fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
            if inpainter.wants_layout:  # e.g. exemplar: copies from the hole's own surface
                others = analysis.objects & ~analysis.mask
                return inpainter.fill_in_scene(rgb, hole, inpaint_side, others, analysis.surfaces())
            return inpainter.fill_in_scene(rgb, hole, inpaint_side)

        key = (*scene_key, inpaint_backend, inpaint_side)
        return self.plates.get(key, lambda: copy_paste.clean_plate(scene, analysis, fill))

    def clear(self) -> None:
        """Forget every scene held in memory (the disk cache stays)."""
        for cache in (self.images, self.analyses, self.parses, self.plates):
            cache.clear()


def image_width(scene: ImageSource) -> int:
    """The scene's own width in pixels, upright as :func:`load_image` turns it (read from the
    file's header: its EXIF orientation 5-8 means the stored height is the width)."""
    if isinstance(scene, np.ndarray):
        return int(scene.shape[1])
    from PIL import Image

    with Image.open(scene) as image:
        width, height = image.size
        return int(height if image.getexif().get(0x0112) in (5, 6, 7, 8) else width)


__all__ = ["Analysed", "CatalogScene", "SceneStore", "image_width"]
