"""A bare product photo's kind and size, read from the catalog's nearest product shots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from staging import StagingEngine
from staging.catalog import CatalogIndex, Hit
from staging.catalog.infer import infer_product
from staging.io import save_image
from tests.helpers.rooms import catalog_of_rooms, product_shot


def _hit(id_: str, score: float, type_: str | None, size: str | None = None) -> Hit:
    metadata = {k: v for k, v in {"type": type_, "size": size}.items() if v}
    return Hit(id_, Path(f"{id_}.png"), score, None, False, metadata)


def test_the_similarity_weighted_vote_wins_over_the_count():
    shots = [
        _hit("a", 0.95, "Stool", "40x40 cm"),
        _hit("b", 0.90, "stool", "46x46 cm"),
        _hit("c", 0.40, "Sofa", "200x90 cm"),
        _hit("d", 0.35, "Sofa"),
        _hit("e", 0.30, "Sofa"),
    ]
    inferred = infer_product(shots)
    assert inferred.type == "Stool"  # 1.85 of the vote against 1.05: fewer, but nearer
    assert inferred.confidence == pytest.approx(1.85 / 2.90)
    assert inferred.size in {"40x40 cm", "46x46 cm"}
    assert inferred.neighbours == ["a", "b", "c", "d", "e"]
    assert infer_product(shots[2:]).type == "Sofa"


def test_the_size_is_the_winning_kinds_weighted_median_and_may_be_unknown():
    shots = [
        _hit("a", 0.9, "Chair", "45x50 cm"),
        _hit("b", 0.8, "Chair", "60x50 cm"),
        _hit("c", 0.7, "Chair", "300x50 cm"),  # an outlier does not move a median
        _hit("d", 0.6, "Bed", "160x200 cm"),
    ]
    assert infer_product(shots).size == "60x50 cm"
    unsized = infer_product([_hit("a", 0.9, "Chair", "Standard"), _hit("b", 0.5, "Bed", "1 m")])
    assert unsized.type == "Chair" and unsized.size is None  # the bed's length is not a chair's
    assert infer_product([_hit("a", 0.9, None), _hit("b", 0.8, "")]) is None


@pytest.fixture(scope="module")
def typed_catalog(tmp_path_factory):
    """Rooms with their true masks, and product shots whose CSV rows give type and size: three
    blue shots like the query ("Stool"), two wide green ones ("Sofa")."""
    root = tmp_path_factory.mktemp("typed")
    catalog_of_rooms(root, [(130, 70, 90), (60, 90, 120)], seed=30)
    lines = (root / "catalog.csv").read_text().splitlines()
    lines[0] += ",type,size"
    lines[1:] = [line + ",," for line in lines[1:]]
    for number, (height, width) in enumerate([(120, 60), (110, 60), (126, 64)]):
        save_image(root / "images" / f"stool{number}.png", product_shot(height, width)[0])
        lines.append(f"images/stool{number}.png,,Stool,{40 + number}x40 cm")
    for number in range(2):
        shot = np.full((200, 200, 3), 245, np.uint8)
        shot[70:130, 10:190] = (40, 160, 60)
        save_image(root / "images" / f"sofa{number}.png", shot)
        lines.append(f"images/sofa{number}.png,,Sofa,220x90 cm")
    (root / "catalog.csv").write_text("\n".join(lines) + "\n")
    engine = StagingEngine(device="cpu")
    index = CatalogIndex.open(root / "index", create=True)
    engine.update_index(index, root / "images", csv=root / "catalog.csv", progress=False)
    return root / "index"


def test_a_bare_photo_gets_the_kind_and_size_of_its_nearest_shots(typed_catalog):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot(118, 62)
    inferred = engine.infer_product(product, typed_catalog)
    assert inferred.type == "Stool" and inferred.size in {"40x40 cm", "41x40 cm", "42x40 cm"}
    assert 0.5 < inferred.confidence <= 1.0
    vector = engine.embed(product, embedder=engine.index(typed_catalog).embedder_name)
    shots = engine.index(typed_catalog).search(vector, k=10, staged_only=False, shots_only=True)
    assert len(shots) == 5 and not any(hit.staged for hit in shots)  # the rooms never vote
    results = engine.stage_copy_paste(product, k=1, index=typed_catalog)
    told = results[0].source["product"]
    assert told["inferred_from"] == "catalog" and told["product_type"] == "Stool"
    assert told["confidence"] == pytest.approx(inferred.confidence, abs=1e-3)
    assert results[0].source["width_cm"] == pytest.approx(float(told["product_size"][:2]))
    # What the user says wins, and is reported as given.
    given = engine.stage_copy_paste(product, k=1, index=typed_catalog, product_type="Sofa")
    assert given[0].source["product"] == {
        "product_type": "Sofa",
        "product_size": None,
        "inferred_from": "given",
    }
    assert given[0].source["width_cm"] == 200  # a sofa's typical width, not the stools'
