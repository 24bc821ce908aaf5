"""Scene parsing: every pixel of a room named (floor, wall, chair, cabinet, ...).

The segmenter (IS-Net) marks a scene's *salient* group, not every piece of furniture: on the
dev rooms it missed armchairs, kitchen cabinets and dining chairs, and copy-paste then inserted
products over them, because "free floor" was free only of what it had marked. A scene parser
(semantic segmentation trained on ADE20K's 150 classes) names every pixel, which gives scene
analysis what the segmenter cannot:

* every piece of furniture, so an inserted product keeps clear of all of them
  (:meth:`SceneParse.obstacles`: every label that is not a floor, a wall, a window...);
* a click on any of them picks it as the object to replace (:meth:`SceneParse.thing_at`);
* what kind of object is being replaced (:meth:`SceneParse.kind_of`), so the fit's category part
  works for scenes whose catalog row does not say (a table is not replaced by a bed).

Labels are grouped by *name*, not by id, so any parser whose labels are English names of floors
and furniture works (ADE20K writes ``"floor;flooring"``-style synonyms; each is matched).
Backends are one small file each behind :class:`SceneParser`, chosen by name from :data:`PARSERS`
(this module: the registry); the result and the interface are in :mod:`staging.segment.scene_parse`
and are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable

from staging.errors import UnknownNameError
from staging.runtime import Runtime
from staging.segment.scene_parse import BACKDROP, STANDING, VOID, SceneParse, SceneParser, synonyms

__all__ = [
    "BACKDROP",
    "PARSERS",
    "STANDING",
    "VOID",
    "SceneParse",
    "SceneParser",
    "create_parser",
    "synonyms",
]


def _semantic(name: str) -> Callable[[Runtime], SceneParser]:
    def factory(runtime: Runtime) -> SceneParser:
        from staging.segment.semantic import create

        return create(runtime, name)

    return factory


# By quality: ADE20K mIoU as published (UperNet-ConvNeXt-T 46.1, SegFormer-b0 37.4).
PARSERS: dict[str, Callable[[Runtime], SceneParser]] = {
    name: _semantic(name) for name in ("upernet-convnext-tiny-ade", "segformer-ade")
}
"""Scene parsers by name; ``auto`` (the engine's default) is the first whose weights are on
disk."""


def create_parser(name: str, runtime: Runtime) -> SceneParser:
    try:
        factory = PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise UnknownNameError(
            f"Unknown scene parser {name!r}. Known: {known}, auto, none."
        ) from None
    return factory(runtime)
