"""What a scene parser returns and the interface every parser implements.

:class:`SceneParse` (a scene's labelled pixels, with the label groups that make a floor, a
wall or a piece of furniture) and :class:`SceneParser` live here, apart from the registry in
:mod:`staging.segment.parse`, so that a backend module (:mod:`staging.segment.semantic`)
imports its base class without importing the registry that imports it back.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

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
