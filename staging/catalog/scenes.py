"""What each staged scene of a catalog shows, read from the catalog rows around it.

Copy-paste must know what the scene's object is before it removes it: without that, a bed was
a place for a sofa. Without weights, the catalog says it in three ways, tried in this order:

1. the scene's own row gives its product's ``type`` (and ``size``);
2. product shots link to it: a shot's ``rooms`` column lists the staged photos that show that
   product (IKEA's ``products.csv`` does). The scene's object is the linked shot nearest to it
   (cosine of the index's embeddings, the object's masked embedding against each shot's),
   with that product's type and size;
3. the scene's row lists the products it shows (``items``: IKEA's ``rooms.csv``). The object is
   one of those kinds: the nearest product shots *of those kinds* vote for it
   (:func:`~staging.catalog.infer.infer_product`).

Otherwise its kind is unknown, and the fit treats it as an obstacle (neither free floor nor
replaceable; :mod:`staging.compose.fit`).

The rooms' types (``room_category`` or ``room``) and what they hold (their items, linked shots
and objects) give how typical a product's kind is for a room type, from the catalog itself: the
share of its rooms of that type that hold the kind, relative to the type that holds it most
(:meth:`CatalogScenes.room_fit`; sofas: living rooms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from staging.catalog.index import CatalogIndex, Hit
from staging.catalog.infer import NEIGHBOURS, infer_product
from staging.compose.fit import same_kind

ROOM_COLUMNS = ("room_category", "room")
"""Columns of a staged row naming its room type (IKEA's ``room_category``)."""
VOTERS = 200
"""Nearest shots searched for the item-restricted vote, before those of other kinds are
dropped: enough for a room's few kinds in a catalog of thousands."""


@dataclass(frozen=True)
class SceneObject:
    """What a staged scene's object is: ``type`` and ``size`` (catalog text, or None), where
    that came from (``row``, ``linked shot``, ``items vote``) and how sure it is (1 for a row;
    the linked shot's cosine; the vote's share)."""

    type: str
    size: str | None
    source: str
    confidence: float

    def describe(self) -> dict:
        return {
            "object_type": self.type,
            "object_size": self.size,
            "object_from": self.source,
            "object_confidence": round(self.confidence, 3),
        }


class CatalogScenes:
    """The objects, room types and room contents of a catalog's staged scenes (built once per
    index version: :meth:`build`)."""

    def __init__(
        self,
        objects: dict[int, SceneObject],
        rooms: dict[int, str],
        contents: dict[int, list[str]],
    ):
        self.objects = objects  # scene row -> its object
        self.rooms = rooms  # scene row -> room type
        self.contents = contents  # scene row -> the kinds it holds
        self._fits: dict[str, dict[str, float]] = {}

    @classmethod
    def build(cls, catalog: CatalogIndex) -> CatalogScenes:
        scenes, shots = catalog.staged_items(), catalog.shot_items()
        linked: dict[str, list[Hit]] = {}
        for shot in shots:
            for name in _names(shot.metadata.get("rooms")):
                linked.setdefault(name, []).append(shot)
        objects, rooms, contents = {}, {}, {}
        vectors = catalog.vectors(scenes) if scenes else None
        for i, scene in enumerate(scenes):
            own = linked.get(scene.path.name, [])
            items = _items(scene.metadata.get("items"))
            found = _object(catalog, scene, vectors[i], own, items)
            if found is not None:
                objects[scene.row] = found
            room = next(
                (str(scene.metadata[c]).strip() for c in ROOM_COLUMNS if scene.metadata.get(c)), ""
            )
            if room:
                rooms[scene.row] = room
            kinds = items + [str(s.metadata.get("type")) for s in own if s.metadata.get("type")]
            contents[scene.row] = kinds + ([found.type] if found else [])
        return cls(objects, rooms, contents)

    def object(self, scene: Hit) -> SceneObject | None:
        return self.objects.get(scene.row)

    def room(self, scene: Hit) -> str | None:
        return self.rooms.get(scene.row)

    def room_fit(self, product_type: str | None, scene: Hit) -> float | None:
        """How typical the product's kind is for the scene's room type, in (0, 1]: the share of
        the catalog's rooms of that type that hold the kind (with Laplace's rule of succession),
        over the largest such share of any type. None when the room type is unknown or no room
        of any type holds the kind."""
        room = self.room(scene)
        if not product_type or room is None:
            return None
        if product_type not in self._fits:
            held: dict[str, list[bool]] = {}
            for row, kinds in self.contents.items():
                if row in self.rooms:
                    holds = any(same_kind(product_type, kind) == 1.0 for kind in kinds)
                    held.setdefault(self.rooms[row], []).append(holds)
            # Laplace's rule of succession: a type with few rooms, none holding the kind, is
            # unlikely for it, not impossible (item lists are incomplete).
            seen = any(any(v) for v in held.values())
            self._fits[product_type] = {
                r: (sum(v) + 1) / (len(v) + 2) for r, v in held.items() if seen
            }
        shares = self._fits[product_type]
        if room not in shares:
            return None
        return shares[room] / max(shares.values())


def _names(value) -> list[str]:
    """File names in a ``;``-separated list of image paths."""
    return [Path(part.strip()).name for part in str(value or "").split(";") if part.strip()]


def _items(value) -> list[str]:
    """Product kinds in a ``;``-separated list of item names (``rug, flatwoven`` stays one)."""
    return [part.strip() for part in re.split(r";", str(value or "")) if part.strip()]


def _object(
    catalog: CatalogIndex, scene: Hit, vector: np.ndarray, linked: list[Hit], items: list[str]
) -> SceneObject | None:
    if scene.metadata.get("type") or scene.category:
        kind = str(scene.metadata.get("type") or scene.category)
        return SceneObject(kind, scene.metadata.get("size") or None, "row", 1.0)
    typed = [shot for shot in linked if shot.metadata.get("type")]
    if typed:
        scores = catalog.vectors(typed) @ vector
        best = int(np.argmax(scores))
        shot = typed[best]
        return SceneObject(
            str(shot.metadata["type"]), shot.metadata.get("size") or None, "linked shot",
            float(scores[best]),
        )  # fmt: skip
    if items:
        near = catalog.search(vector, k=VOTERS, staged_only=False, shots_only=True)
        of_items = [
            hit for hit in near
            if any(same_kind(str(hit.metadata.get("type") or ""), item) == 1.0 for item in items)
        ]  # fmt: skip
        voted = infer_product(of_items[:NEIGHBOURS])
        if voted is not None:
            return SceneObject(voted.type, voted.size, "items vote", voted.confidence)
    return None
