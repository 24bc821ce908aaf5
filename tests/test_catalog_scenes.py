"""What a staged scene's object is, from the catalog rows around it; only an object of the
product's kind is replaced; room types rank scenes."""

from __future__ import annotations

import numpy as np
import pytest

from staging import StagingEngine
from staging.catalog import CatalogIndex
from staging.compose.align import crop_to_content
from staging.compose.fit import place_product
from staging.compose.scene import analyse_scene
from staging.io import save_image
from tests.helpers.rooms import RED, catalog_of_rooms, product_shot, room


def _red_shot(width: int = 70, height: int = 90) -> np.ndarray:
    """A studio shot of the rooms' red box: what the rooms' objects look like."""
    shot = np.full((200, 200, 3), 245, np.uint8)
    y0, x0 = (200 - height) // 2, (200 - width) // 2
    shot[y0 : y0 + height, x0 : x0 + width] = RED
    return shot


@pytest.fixture(scope="module")
def rooms_catalog(tmp_path_factory):
    """room0 (Bedroom) shows a linked "Bed" shot; room1 (Dining) has no link but lists its
    items (chair, table); room2 nobody describes. A red "Sofa" shot looks most like every
    room's object, so only the item list keeps room1's object from being called a sofa."""
    root = tmp_path_factory.mktemp("rooms")
    catalog_of_rooms(root, [(130, 70, 90), (60, 90, 120), (180, 60, 80)], seed=50)
    rows = ["image,mask,type,size,rooms,room_category,items"]
    rows += [
        "images/room0.png,masks/room0.png,,,,Bedroom,",
        "images/room1.png,masks/room1.png,,,,Dining,chair;table",
        "images/room2.png,masks/room2.png,,,,,",
    ]
    shots = {
        "bed": (_red_shot(80, 60), "Bed", "160x200 cm", "room0.png"),
        "sofa": (_red_shot(90, 120), "Sofa", "200x90 cm", ""),
        "chair": (_red_shot(60, 110), "Chair", "45x50 cm", ""),
        "stool": (product_shot(100, 50)[0], "Stool", "40x40 cm", ""),
    }
    for name, (image, kind, size, shown) in shots.items():
        save_image(root / "images" / f"{name}.png", image)
        rows.append(f"images/{name}.png,,{kind},{size},{shown},,")
    (root / "catalog.csv").write_text("\n".join(rows) + "\n")
    engine = StagingEngine(device="cpu")
    index = CatalogIndex.open(root / "index", create=True)
    engine.update_index(index, root / "images", csv=root / "catalog.csv", progress=False)
    return root / "index"


def test_each_scene_object_is_read_from_its_row_its_shots_or_its_items(rooms_catalog):
    engine = StagingEngine(device="cpu")
    scenes = engine.catalog_scenes(rooms_catalog)
    by_name = {hit.path.stem: hit for hit in engine.index(rooms_catalog).staged_items()}
    bed = scenes.object(by_name["room0"])
    assert (bed.type, bed.size, bed.source) == ("Bed", "160x200 cm", "linked shot")
    chair = scenes.object(by_name["room1"])
    assert (chair.type, chair.source) == ("Chair", "items vote")  # not the nearer sofa
    assert scenes.object(by_name["room2"]) is None  # nobody says
    assert scenes.room(by_name["room1"]) == "Dining" and scenes.room(by_name["room2"]) is None
    # Rooms of a type that holds the kind fit it best; unknown stays unknown.
    assert scenes.room_fit("Chair", by_name["room1"]) == 1.0
    # One room each: (0 + 1) / (1 + 2) against (1 + 1) / (1 + 2), Laplace's rule.
    assert scenes.room_fit("Chair", by_name["room0"]) == pytest.approx(0.5)
    assert scenes.room_fit("Chair", by_name["room2"]) is None
    assert scenes.room_fit("Wardrobe", by_name["room1"]) is None
    assert engine.catalog_scenes(rooms_catalog) is scenes  # built once per index version


def test_only_an_object_of_the_products_kind_is_replaced():
    scene, mask = room(3, box=(130, 70, 90))
    analysis = analyse_scene(scene, mask)
    _, alpha = crop_to_content(*product_shot(120, 80))
    same = place_product(alpha, analysis, 100.0, 0.9, "Chair", "Dining chair")
    assert same.mode == "replace" and same.parts["category"] == 1.0
    other = place_product(alpha, analysis, 100.0, 0.9, "Chair", "Bed")
    assert other.mode == "insert"  # a chair does not take a bed's place
    unknown = place_product(alpha, analysis, 100.0, 0.9, "Chair", None)
    assert unknown.mode == "insert" and "category" not in unknown.parts  # an obstacle
    paper = place_product(alpha, analysis, 100.0, 0.9, None, None)
    assert paper.mode == "replace"  # nothing known of the product: the paper's rule
    ranked = place_product(alpha, analysis, 100.0, 0.9, "Chair", "Dining chair", room_fit=0.25)
    assert ranked.parts["room"] == 0.25 and ranked.score < same.score


def test_copy_paste_says_what_each_scene_shows_and_keeps_what_it_does_not_know(rooms_catalog):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot(110, 60)
    results = engine.stage_copy_paste(product, k=3, index=rooms_catalog, product_type="Chair")
    by_scene = {r.source["id"]: r for r in results}
    assert set(by_scene) == {"room0", "room1", "room2"}
    dining = by_scene["room1"].source
    assert dining["object_type"] == "Chair" and dining["object_from"] == "items vote"
    assert dining["placement"] == "replace" and dining["room"] == "Dining"
    assert (
        by_scene["room1"].scores["fit_room"] == 1.0 and by_scene["room0"].scores["fit_room"] == 0.5
    )
    assert by_scene["room0"].source["placement"] == "insert"  # a bed stays
    assert by_scene["room2"].source["placement"] == "insert"  # so does what nobody names
    assert by_scene["room2"].source["inpaint_backend"] is None  # nothing was filled
    assert by_scene["room1"].scores["fit"] > by_scene["room0"].scores["fit"]


def test_a_fill_larger_than_the_structure_fill_can_make_keeps_the_old_object():
    """A bed of over half the frame, replaced by a bed covering two thirds of it (enough
    coverage) would leave a sixth of the frame to fill: the old bed stays, the new goes in."""
    from staging.compose.fit import MAX_FILL_SHARE, MIN_COVERAGE

    scene, mask = room(3, box=(10, 300, 150))
    analysis = analyse_scene(scene, mask)
    _, alpha = crop_to_content(*product_shot(150, 190))
    kept = place_product(alpha, analysis, 300.0, 0.9, "Bed", "Bed")
    assert kept.mode == "insert"
    wider = place_product(alpha, analysis, 350.0, 0.9, "Bed", "Bed")
    assert wider.mode == "replace"  # covering more, it leaves little to fill
    left = (1 - wider.parts["coverage"]) * mask.mean()
    assert wider.parts["coverage"] >= MIN_COVERAGE and left <= MAX_FILL_SHARE


def test_a_scene_with_no_free_floor_for_the_product_is_skipped():
    """Furniture at the product's depth or nearer everywhere it could stand: no insert, no
    replace (another kind): the candidate is skipped, with the reason."""
    scene, mask = room(3, box=(130, 70, 90))
    analysis = analyse_scene(scene, mask)
    _, alpha = crop_to_content(*product_shot(120, 80))
    crowded = analysis.objects.copy()
    crowded[150:, :] = True  # the whole floor in front of the old object is furniture
    from dataclasses import replace

    fit = place_product(alpha, replace(analysis, objects=crowded), 60.0, 0.9, "Chair", "Bed")
    assert fit.problem == "no free floor for it" and fit.score == 0.0
    assert fit.parts["free_floor"] < 0.5
