"""Hand placement in one scene (issue 17, point 5): pick the object, move and resize the
product, keep or remove the object, toggle shadows; re-renders reuse the cached work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import staging.compose.copy_paste as copy_paste_module
from staging import StagingEngine
from staging.cli import app
from staging.compose.align import Alignment, mask_geometry
from staging.compose.fit import adjust
from staging.compose.scene import pick_object
from staging.errors import StagingError
from staging.io import load_image, save_image, save_mask
from tests.helpers.rooms import RED, catalog_of_rooms, demo_index, product_shot, room  # noqa: F401 - fixture


def _red(image: np.ndarray) -> np.ndarray:
    pixels = image.astype(int)
    return (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)


@pytest.fixture(scope="module")
def two_objects(tmp_path_factory):
    """A room with two red objects: the big one left, a small one right."""
    folder = tmp_path_factory.mktemp("scene")
    scene, big = room(21, box=(40, 80, 110))
    small = np.zeros_like(big)
    small[160:217, 230:280] = True  # stands on the same floor line (row 217)
    scene[small] = RED
    save_image(folder / "room.png", scene)
    save_mask(folder / "room-mask.png", big | small)
    return folder / "room.png", folder / "room-mask.png", big, small


def test_pick_object_takes_the_part_under_the_click_or_the_nearest():
    objects = np.zeros((50, 80), bool)
    objects[10:20, 5:15] = True
    objects[30:45, 50:70] = True
    assert pick_object(objects, (8, 12))[15, 10] and not pick_object(objects, (8, 12))[35, 60]
    beside = pick_object(objects, (48, 40))  # on the floor, nearest to the right part
    assert beside[35, 60] and not beside[15, 10]
    assert not pick_object(np.zeros((5, 5), bool), (1, 1)).any()


def test_adjust_moves_the_feet_and_scales_about_them():
    start = Alignment(0.5, 10.0, 20.0, (10.0, 20.0, 60.0, 120.0))  # a 100x200 product
    same = adjust(start, (200, 100))
    assert same == start
    moved = adjust(start, (200, 100), feet=(100.0, 150.0), scale=2.0)
    assert moved.scale == 1.0
    assert moved.box == (50.0, -50.0, 150.0, 150.0)  # feet at (100, 150), twice the size
    with pytest.raises(StagingError, match="positive"):
        adjust(start, (200, 100), scale=0)


def test_without_hand_settings_it_is_the_copy_paste_result(demo_index):  # noqa: F811
    index, _ = demo_index
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    fitted = engine.stage_copy_paste(product, k=1, index=index)[0]
    again = engine.stage_in_scene(product, fitted.source["path"], scene_mask=fitted.source["mask"])
    assert np.array_equal(again.image, fitted.image)
    assert again.source["feet"] == fitted.source["feet"]
    assert again.source["placement"] == "replace"


def test_position_scale_and_removal(two_objects):
    scene_path, mask_path, big, small = two_objects
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    base = engine.stage_in_scene(product, scene_path, scene_mask=mask_path)
    assert base.source["object_box"] == [40, 107, 120, 217]  # the largest object
    assert not _red(base.image)[big].any()  # replaced: removed and filled
    assert _red(base.image)[small].all()  # the other object is left alone

    moved = engine.stage_in_scene(
        product, scene_path, scene_mask=mask_path, position=(180, 240), scale=0.5
    )
    _, cx, _, (x0, y0, x1, y1) = mask_geometry(moved.mask)
    _, _, _, (bx0, by0, bx1, by1) = mask_geometry(base.mask)
    assert abs(y1 - 240) <= 1 and abs((x0 + x1) / 2 - 180) <= 1
    assert abs((y1 - y0) - 0.5 * (by1 - by0)) <= 2
    assert moved.source["feet"] == [180.0, 240.0] and moved.source["scale"] == 0.5

    # The paper's rule enlarges this small product photo a little: the user is told.
    assert base.scores["scale"] == pytest.approx(1.1)
    assert "enlarged 1.1x" in base.source["warning"] and "warning" not in moved.source

    kept = engine.stage_in_scene(
        product, scene_path, scene_mask=mask_path, remove=False, position=(180, 240), scale=0.5
    )
    assert kept.source["placement"] == "insert"
    assert _red(kept.image)[big & ~kept.mask].mean() > 0.9  # the old object stays
    with pytest.raises(StagingError, match="outside the scene"):
        engine.stage_in_scene(product, scene_path, scene_mask=mask_path, position=(400, 10))
    with pytest.raises(StagingError, match="scale"):
        engine.stage_in_scene(product, scene_path, scene_mask=mask_path, scale=-1)


def test_a_click_picks_the_object_to_replace(two_objects):
    scene_path, mask_path, big, small = two_objects
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    picked = engine.stage_in_scene(
        product, scene_path, scene_mask=mask_path, object_at=(290, 200), remove=True
    )
    assert picked.source["object_box"] == [230, 160, 280, 217]
    assert not _red(picked.image)[small].any()  # the small one removed
    assert _red(picked.image)[big].mean() > 0.9  # the big one stays
    _, cx, _, (_, _, _, y1) = mask_geometry(picked.mask)
    assert y1 == 217 and abs(cx - 255) < 3  # standing where the small one stood


def test_shadows_toggle(two_objects):
    scene_path, mask_path, _, _ = two_objects
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    options = dict(scene_mask=mask_path, remove=False, position=(180, 240), harmonize=False)
    lit = engine.stage_in_scene(product, scene_path, shadow=False, **options)
    shaded = engine.stage_in_scene(product, scene_path, shadow=True, **options)
    scene = load_image(scene_path)
    # Without shadows nothing outside the product's (feathered) alpha changes.
    outside = lit.alpha == 0
    assert np.abs(lit.image.astype(int) - scene.astype(int))[outside].max() == 0
    feet = np.zeros_like(outside)
    feet[240:246, 160:200] = True
    assert shaded.image[feet].mean() < lit.image[feet].mean() - 5


def test_re_renders_reuse_the_cut_out_the_analysis_and_the_plate(two_objects, monkeypatch):
    scene_path, mask_path, _, _ = two_objects
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    calls = {"matte": 0, "plate": 0}
    matte, plate = engine._product_layer, copy_paste_module.clean_plate

    def counted_matte(*args, **kwargs):
        calls["matte"] += 1
        return matte(*args, **kwargs)

    def counted_plate(*args, **kwargs):
        calls["plate"] += 1
        return plate(*args, **kwargs)

    monkeypatch.setattr(engine, "_product_layer", counted_matte)
    monkeypatch.setattr(copy_paste_module, "clean_plate", counted_plate)
    for x in (100, 120, 140):
        engine.stage_in_scene(product, scene_path, scene_mask=mask_path, position=(x, 230))
    engine.stage_in_scene(product, scene_path, scene_mask=mask_path, shadow=False, scale=0.8)
    assert calls == {"matte": 1, "plate": 1}
    # Another object clicked is another plate; an edited scene file is a new scene.
    engine.stage_in_scene(product, scene_path, scene_mask=mask_path, object_at=(250, 200))
    assert calls == {"matte": 1, "plate": 2}


def test_cli_stage_in_scene(tmp_path, two_objects):
    scene_path, mask_path, _, small = two_objects
    product, _ = product_shot()
    save_image(tmp_path / "blue.png", product)
    out = tmp_path / "out.png"
    runner = CliRunner()
    arguments = ["stage", "in-scene", str(tmp_path / "blue.png"), str(scene_path)]
    arguments += ["--scene-mask", str(mask_path), "--out", str(out)]
    result = runner.invoke(app, arguments + ["--object-at", "250,200", "--remove"])
    assert result.exit_code == 0, result.output
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["source"]["object_box"] == [230, 160, 280, 217]
    assert not _red(load_image(out))[small].any()
    assert "camera_height_cm" not in info["source"]
    # The object is 50 px wide on row 217 of 256: at 100 cm the camera stood at 178 cm.
    sized = ["--object-at", "250,200", "--object-size", "100x40 cm", "--size", "50x50 cm"]
    assert runner.invoke(app, arguments + sized).exit_code == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["source"]["camera_height_cm"] == pytest.approx(100 * (217 - 128) / 50, abs=0.1)
    # Without the product's own width nothing is sized by the camera: none is reported.
    assert runner.invoke(app, arguments + sized[:4]).exit_code == 0
    assert "camera_height_cm" not in json.loads(out.with_suffix(".json").read_text())["source"]
    # A size no level camera explains is said, and the default camera is used.
    wrong = ["--object-at", "250,200", "--object-size", "900x40 cm", "--size", "50x50 cm"]
    assert runner.invoke(app, arguments + wrong).exit_code == 0
    source = json.loads(out.with_suffix(".json").read_text())["source"]
    assert (
        "camera_height_cm" not in source
        and "not what a level camera" in source["calibration_problem"]
    )
    bad = runner.invoke(app, arguments + ["--position", "left"])
    # A StagingError, which the console script prints as one line (tests/test_cli.py).
    assert isinstance(bad.exception, StagingError)
    assert "--position must be X,Y" in str(bad.exception)
    huge = runner.invoke(app, arguments + ["--box", "1e999,0,10,10"])
    assert "--box must be X0,Y0,X1,Y1" in str(huge.exception)
    boxed = runner.invoke(app, arguments + ["--box", "235,170,270,210", "--remove"])
    assert boxed.exit_code == 0, boxed.output
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["source"]["object_box"] == [230, 160, 280, 217]  # the object in the box, whole


def test_scenes_are_worked_on_at_max_side_and_never_enlarged(two_objects):
    scene_path, mask_path, _, _ = two_objects  # 320x256
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    small = engine.stage_in_scene(product, scene_path, scene_mask=mask_path, max_side=160)
    assert small.image.shape == (128, 160, 3)
    assert small.source["object_box"] == [20, 53, 60, 109]  # the big object, at half size
    same = engine.stage_in_scene(product, scene_path, scene_mask=mask_path, max_side=4096)
    assert same.image.shape == (256, 320, 3)


def test_scene_analyses_round_trip_on_disk(tmp_path, two_objects):
    from dataclasses import fields, replace

    from staging.compose.scene import SceneCache, analyse_scene

    scene_path, mask_path, big, small = two_objects
    analysis = analyse_scene(load_image(scene_path), big | small)
    # Every field set to something its default is not, so a field dropped on disk shows.
    analysis = replace(
        analysis, floor_line=(0.01, 200.5), shadow_strength=0.3, light_dx=-0.7, shadow_softness=0.07
    )
    analysis.shadow[210:220, 100:140] = True
    cache = SceneCache(tmp_path / "scenes")
    assert cache.get("k") is None
    cache.put("k", analysis)
    back = cache.get("k")
    for field in fields(analysis):
        a, b = getattr(analysis, field.name), getattr(back, field.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, field.name
    (tmp_path / "scenes" / "k.npz").write_bytes(b"not an npz")
    assert cache.get("k") is None  # a corrupt entry is a miss
    assert [p.name for p in (tmp_path / "scenes").iterdir()] == ["k.npz"]  # no temp left


def test_indexing_analyses_the_scenes_so_queries_decode_only_the_chosen(tmp_path, monkeypatch):
    import staging.compose.scene as scene_module

    folder = tmp_path / "images"
    catalog_of_rooms(tmp_path, [(130, 70, 90), (60, 90, 120), (180, 60, 80)], seed=40)
    save_image(folder / "studio.png", product_shot(100, 70)[0])
    options = dict(device="cpu", cache_dir=str(tmp_path / "cache"))
    engine = StagingEngine(**options)
    engine.update_index(tmp_path / "index", folder, csv=tmp_path / "catalog.csv", progress=False)
    assert len(list(engine.scene_cache.folder.glob("*.npz"))) == 3  # one per staged scene

    fresh = StagingEngine(**options)  # nothing in memory
    loaded = []
    load = fresh.load_image

    def counted(source):
        loaded.append(source)
        return load(source)

    def no_analysis(*args, **kwargs):
        raise AssertionError("analysed again instead of read from the index-time cache")

    monkeypatch.setattr(scene_module, "analyse_scene", no_analysis)
    monkeypatch.setattr(fresh, "load_image", counted)
    results = fresh.stage_copy_paste(product_shot()[0], k=1, index=tmp_path / "index")
    scenes = [str(s) for s in loaded if not isinstance(s, np.ndarray)]
    assert len(results) == 1 and scenes == [results[0].source["path"]]  # only the chosen one


def test_the_exemplar_fill_removes_the_object_without_copying_the_other(two_objects):
    scene_path, mask_path, big, small = two_objects
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    staged = engine.stage_in_scene(
        product, scene_path, scene_mask=mask_path, remove=True, scale=0.4,
        inpaint_backend="exemplar",
    )  # fmt: skip
    assert staged.source["inpaint_backend"] == "exemplar"
    assert not _red(staged.image)[big & ~staged.mask].any()  # removed, nothing red copied in
    assert _red(staged.image)[small].all()
