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
Backends are one small file each behind :class:`SceneParser`, chosen by name from :data:`PARSERS`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from staging.errors import UnknownNameError
from staging.runtime import Runtime

STANDING = frozenset({
    "floor", "flooring", "rug", "carpet", "carpeting", "grass", "earth", "ground", "sidewalk",
    "pavement", "path", "field", "sand", "land", "soil", "dirt", "dirt track", "road", "deck",
    "terrace",
})  # fmt: skip
"""Surfaces a product may stand on: never an obstacle."""
BACKDROP = frozenset({
    "wall", "ceiling", "sky", "windowpane", "window", "building", "edifice", "house", "door",
    "screen door", "curtain", "drape", "drapery", "blind", "painting", "picture", "poster",
    "mirror", "column", "pillar", "fence", "railing", "bannister", "chandelier", "light",
    "sconce", "hood", "clock", "bulletin board", "signboard", "flag", "awning", "canopy", "tree",
    "palm", "mountain", "hill", "water", "sea", "river", "lake", "skyscraper", "tower",
    "streetlight", "traffic light",
})  # fmt: skip
"""What stands behind a product or hangs on a wall or a ceiling: overlapping it is no
collision. ADE20K's names, one per class in its checkpoints' configs."""
VOID = frozenset({"background", "void", "unlabeled", "unlabelled", "other"})


def synonyms(name: str) -> list[str]:
    """``"floor;flooring"`` -> ``["floor", "flooring"]`` (also splits on commas), lower case."""
    return [part.strip().lower() for part in re.split(r"[;,]", name) if part.strip()]


def _in(group: frozenset[str], name: str) -> bool:
    return any(word in group for word in synonyms(name))


@dataclass
class SceneParse:
    """A scene's pixels labelled: ``labels`` (int HxW) index ``names`` (a label outside them
    is nothing)."""

    labels: np.ndarray
    names: tuple[str, ...]

    @cached_property
    def _obstacles(self) -> np.ndarray:
        thing = [not _in(STANDING | BACKDROP | VOID, name) for name in self.names]
        table = np.array([*thing, False])  # index len(names): any label outside them
        labels = self.labels.astype(np.intp)
        return table[np.where((labels >= 0) & (labels < len(self.names)), labels, -1)]

    def obstacles(self) -> np.ndarray:
        """bool HxW: furniture and every other thing (not a floor, a wall or a window)."""
        return self._obstacles

    def others(self, mask: np.ndarray) -> np.ndarray:
        """:meth:`obstacles` less the object ``mask`` marks: a connected region of one label
        that lies mostly inside the mask is that object as the parser sees it (its labels
        spill past the segmenter's edge at the parser's coarser resolution)."""
        out = self.obstacles().copy()
        for label in np.unique(self.labels[mask & out]):
            count, parts = cv2.connectedComponents(
                (self.labels == label).astype(np.uint8), connectivity=8
            )
            inside = np.bincount(parts[mask], minlength=count)
            total = np.bincount(parts.ravel(), minlength=count)
            itself = np.flatnonzero(inside[1:] * 2 > total[1:]) + 1  # part 0: not this label
            out[np.isin(parts, itself)] = False
        return out

    def kind_of(self, mask: np.ndarray) -> str | None:
        """The name of the object most of ``mask`` is, when the parser agrees it is a thing
        (obstacle labels cover more than half of it); None otherwise."""
        inside = self.labels[mask & self.obstacles()]
        if inside.size * 2 <= int(mask.sum()):
            return None
        label = int(np.bincount(inside.astype(np.intp)).argmax())
        return synonyms(self.names[label])[0]

    def thing_at(self, point: tuple[float, float], ignore: np.ndarray) -> np.ndarray | None:
        """The connected region of the obstacle label under ``point`` (x, y), as a bool mask;
        None when the pixel is not a thing or is in ``ignore`` (the segmenter's own objects,
        which name it more precisely)."""
        h, w = self.labels.shape
        x, y = int(np.clip(round(point[0]), 0, w - 1)), int(np.clip(round(point[1]), 0, h - 1))
        if ignore[y, x] or not self.obstacles()[y, x]:
            return None
        same = (self.labels == self.labels[y, x]).astype(np.uint8)
        _, parts = cv2.connectedComponents(same, connectivity=8)
        return parts == parts[y, x]

    def resized(self, size: tuple[int, int]) -> SceneParse:
        """The same parse at ``size`` (w, h), nearest label."""
        labels = cv2.resize(self.labels.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
        return SceneParse(labels, self.names)


class SceneParser(ABC):
    """One scene-parsing backend: an RGB uint8 image in, a :class:`SceneParse` at its size out."""

    name: str = "parser"

    @abstractmethod
    def parse(self, rgb: np.ndarray) -> SceneParse: ...


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
