"""Copy-paste that holds up on real catalogs: real sizes, fit ranking, scene analysis, shadows,
grain, the realism measure and ``staging eval copy-paste``.

Scenes are the synthetic rooms of test_copy_paste (wall, floorboards, a red product whose true
mask is known), so sizes, positions and shadows can be checked against geometry.
"""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from staging import StagingEngine
from staging.cli import app
from staging.compose.align import crop_to_content, mask_geometry, warp_product
from staging.compose.blend import (
    cast_shadow,
    composite,
    contact_shadow,
    feather,
    harmonise,
    match_grain,
    noise_sigma,
    support_points,
    wide_blur,
)
from staging.compose.copy_paste import paste_product, work_region
from staging.compose.fit import MIN_COVERAGE, place_product, same_kind
from staging.compose.scale import (
    CAMERA_HEIGHT_CM,
    SizePriors,
    camera_height,
    pixels_per_cm,
    typical_width,
    width_from_size,
)
from staging.compose.scene import DEFAULT_SOFTNESS, analyse_scene, edge_softness, object_shadow
from staging.errors import ModelNotAvailableError, StagingError
from staging.evaluate.copy_paste import evaluate_copy_paste
from staging.evaluate.realism import frechet_distance, kid, realism
from staging.io import save_image, save_mask
from tests.helpers.rooms import catalog_of_rooms, product_shot, room


# -- real sizes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "cm"),
    [
        ("98x57 cm", 98.0), ("28 cm", 28.0), ("90x50x50 cm", 90.0), ("161,221x88 cm", 161.0),
        ("1,5 m", 150.0), ("500 mm", 50.0), ("10.5 cm", 10.5), ("Standard King", None),
        ("1.5 l", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_width_from_catalog_sizes(text, cm):
    assert width_from_size(text) == cm


def test_size_priors_prefer_the_size_then_the_catalog_then_typical_widths():
    priors = SizePriors.from_catalog(
        [("Chair", "40 cm"), ("Chair", "44 cm"), ("Chair", "48x50 cm"), ("Stool", "30 cm")]
    )
    assert priors.width("Chair", "52x50 cm") == (52.0, "size")
    assert priors.width("chair") == (44.0, "catalog median of its type")
    # One stool size is no median: the typical stool width is used.
    assert priors.width("Stool") == (typical_width("stool"), "typical width of its kind")
    assert typical_width("Bar stool") == 45 and typical_width("Armchair") == 80
    assert priors.width("Spaceship") is None and priors.width(None) is None


def test_pixels_per_cm_follow_the_level_camera():
    # Floor row 700 of a 1000-row frame: 200 rows below the horizon.
    assert pixels_per_cm(700, 1000) == pytest.approx(200 / CAMERA_HEIGHT_CM)
    assert pixels_per_cm(400, 1000) is None  # above the horizon: no floor


# -- fit and placement -------------------------------------------------------------------------
def _analysis(box, size=(256, 320), seed=3):
    scene, mask = room(seed, box=box, size=size)
    return scene, mask, analyse_scene(scene, mask)


def test_the_product_takes_its_real_width_on_the_old_floor_line():
    scene, mask, analysis = _analysis((140, 40, 75))
    _, alpha = crop_to_content(*product_shot(120, 60))
    fit = place_product(alpha, analysis, width_cm=50.0)
    assert fit.mode == "replace"
    floor = mask_geometry(mask)[3][3]
    expected = 50.0 * pixels_per_cm(floor, mask.shape[0])
    x0, y0, x1, y1 = fit.alignment.box
    assert x1 - x0 == pytest.approx(expected, abs=1.0)
    assert y1 == pytest.approx(floor, abs=0.5)
    # Twice as wide in reality: twice as wide in the picture (same floor line).
    wider = place_product(alpha, analysis, width_cm=100.0)
    assert wider.mode == "replace"
    assert wider.alignment.box[2] - wider.alignment.box[0] == pytest.approx(2 * (x1 - x0), abs=1)


def test_camera_height_is_what_makes_a_known_object_its_pixel_width():
    height = camera_height(40, 60.0, floor_y=230, image_height=256)
    assert height == pytest.approx(60.0 * (230 - 128) / 40)
    assert pixels_per_cm(230, 256, camera_height_cm=height) * 60.0 == pytest.approx(40)
    assert camera_height(40, 60.0, floor_y=100, image_height=256) is None  # above the horizon
    assert camera_height(4, 600.0, floor_y=230, image_height=256) is None  # no room's camera


def test_a_box_names_an_object_and_keeps_it_and_the_others_whole():
    scene, mask = room(5, box=(40, 50, 70), size=(256, 320))
    mask[150:222, 220:300] = True  # another object
    tight = (50, 160, 80, 230)  # inside the chair: its sides stick out
    analysis = analyse_scene(scene, mask, box=tight)
    assert analysis.box == (40, 147, 90, 217)  # the whole chair
    assert analysis.objects[150:222, 220:300].all()  # the other object still known
    with pytest.raises(ValueError, match="inside the box"):
        analyse_scene(scene, mask, box=(0, 0, 20, 20))
    # A click names the object more closely than a catalog's box.
    assert analyse_scene(scene, mask, point=(250, 200), box=tight).box[0] == 220


def test_a_photo_turned_by_its_exif_has_its_upright_width(tmp_path):
    """Catalog boxes are in the photo's upright pixels, as load_image turns it."""
    from PIL import Image

    from staging.pipelines.scenes import image_width as _image_width

    image = Image.new("RGB", (300, 200))
    exif = image.getexif()
    exif[0x0112] = 6  # stored on its side: shown 200 wide
    image.save(tmp_path / "turned.jpg", exif=exif)
    image.save(tmp_path / "plain.jpg")
    assert _image_width(tmp_path / "turned.jpg") == 200
    assert _image_width(tmp_path / "plain.jpg") == 300


def test_a_scene_object_of_known_size_calibrates_the_products_size():
    scene, mask, analysis = _analysis((140, 40, 75))
    _, alpha = crop_to_content(*product_shot(120, 60))
    (ox0, _, ox1, oy1) = mask_geometry(mask)[3]
    # As wide in reality as the old object: as wide in the picture, wherever the camera was.
    fit = place_product(alpha, analysis, width_cm=60.0, object_width_cm=60.0)
    x0, _, x1, _ = fit.alignment.box
    assert x1 - x0 == pytest.approx(ox1 - ox0, abs=1.0)
    # Beside a 90 cm object of those pixels the camera stood at 2 m: the 60 cm product takes
    # that camera's scale wherever it stands (here in front, as it covers too little).
    fit = place_product(alpha, analysis, width_cm=60.0, object_width_cm=90.0)
    camera = 90.0 * (oy1 - 128) / (ox1 - ox0)
    assert fit.camera_height_cm == pytest.approx(camera)
    x0, _, x1, y1 = fit.alignment.box
    assert x1 - x0 == pytest.approx(60 * pixels_per_cm(y1, 256, camera_height_cm=camera), abs=1)
    # Without the object's size the default camera decides, and gives another width.
    default = place_product(alpha, analysis, width_cm=60.0)
    assert default.camera_height_cm is None
    assert abs((default.alignment.box[2] - default.alignment.box[0]) - (x1 - x0)) > 5
    # A size no level camera can explain (a whole wall unit's width) is not believed.
    assert (
        place_product(alpha, analysis, width_cm=60.0, object_width_cm=900.0).camera_height_cm
        is None
    )


def test_the_catalog_row_of_a_scene_gives_its_object_box_type_and_size(tmp_path):
    """A staged catalog photo's CSV row says which object it shows (``box``), what it is
    (``type``) and how big (``size``): copy-paste replaces that object, at the size the
    room's camera implies, and says so."""
    scene, mask = room(5, box=(40, 50, 70), size=(256, 320))
    mask[150:222, 220:300] = True  # a larger second object, which the box does not name
    scene[150:222, 220:300] = (200, 40, 40)
    save_image(tmp_path / "images" / "room.png", scene)
    save_mask(tmp_path / "masks" / "room.png", mask)
    (tmp_path / "catalog.csv").write_text(
        'image,mask,type,size,box\nimages/room.png,masks/room.png,Chair,50x50 cm,"30,100,100,230"\n'
    )
    save_image(tmp_path / "chair.png", product_shot(120, 60)[0])
    engine = StagingEngine(device="cpu")
    engine.update_index(tmp_path / "index", tmp_path / "images", csv=tmp_path / "catalog.csv",
                        progress=False)  # fmt: skip
    result = engine.stage_copy_paste(tmp_path / "chair.png", k=1, index=tmp_path / "index",
                                     product_type="Chair", product_size="50x55 cm")[0]  # fmt: skip
    assert result.source["camera_height_cm"] == pytest.approx(50.0 * (217 - 128) / 50, rel=0.05)
    assert result.scores["fit_category"] == 1.0
    feet_x, feet_y = result.source["feet"]
    assert 50 <= feet_x <= 80 and feet_y == pytest.approx(217, abs=2)  # the boxed chair's place
    placed = result.alpha >= 0.5
    cols = np.flatnonzero(placed.any(axis=0))
    assert cols[-1] - cols[0] + 1 == pytest.approx(50, abs=3)  # 50 cm = the chair's 50 px
    # Re-rendered by hand from the result's own source: the same object, camera and pixels.
    again = engine.stage_in_scene(tmp_path / "chair.png", result.source["path"],
                                  scene_mask=result.source["mask"], box=result.source["box"],
                                  object_size=result.source["object_size"],
                                  object_type=result.source["object_type"],
                                  product_type="Chair", product_size="50x55 cm")  # fmt: skip
    assert again.source["feet"] == result.source["feet"]
    assert again.source["camera_height_cm"] == result.source["camera_height_cm"]
    assert np.array_equal(again.image, result.image)
    with pytest.raises(StagingError, match="is not a length"):
        engine.stage_in_scene(tmp_path / "chair.png", result.source["path"], object_size="big")
    # The box is in the photo's own pixels: worked on at half size, it still names its object
    # (here the one on the right, which the scene at half size has at x 110-150).
    (tmp_path / "catalog.csv").write_text(
        'image,mask,type,size,box\nimages/room.png,masks/room.png,Cabinet,,"215,140,305,230"\n'
    )
    engine.update_index(tmp_path / "index", tmp_path / "images", csv=tmp_path / "catalog.csv",
                        progress=False)  # fmt: skip
    half = engine.stage_copy_paste(tmp_path / "chair.png", k=1, index=tmp_path / "index",
                                   max_side=160)[0]  # fmt: skip
    assert 110 <= half.source["feet"][0] <= 150
    # A box that holds no object is said, not guessed around; a malformed one too.
    for box, error in (('"0,0,20,20"', "inside its catalog box"),
                       ("left", "box 'left' of room is not x0,y0,x1,y1")):  # fmt: skip
        (tmp_path / "catalog.csv").write_text(
            f"image,mask,type,size,box\nimages/room.png,masks/room.png,Chair,50x50 cm,{box}\n"
        )
        engine.update_index(tmp_path / "index", tmp_path / "images",
                            csv=tmp_path / "catalog.csv", progress=False)  # fmt: skip
        with pytest.raises(StagingError, match=error):
            engine.stage_copy_paste(tmp_path / "chair.png", k=1, index=tmp_path / "index")


def test_no_product_ends_up_larger_than_the_frame_allows():
    scene, mask, analysis = _analysis((130, 70, 90))
    _, alpha = crop_to_content(*product_shot(180, 40))  # tall: a wardrobe
    fit = place_product(alpha, analysis, width_cm=400.0)
    x0, y0, x1, y1 = fit.alignment.box
    h, w = mask.shape
    assert y0 >= 0.02 * h - 0.5 and x0 >= 0 and x1 <= w
    assert 0 < fit.parts["scale"] < 0.5  # shrunk to fit, and the fit says so


def test_fit_ranks_the_compatible_scene_first_whatever_the_similarity():
    _, alpha = crop_to_content(*product_shot(120, 60))
    # Scene A: the old object is about the product's real size (the product covers it).
    _, _, a = _analysis((140, 40, 75), seed=3)
    width = 40 / pixels_per_cm(mask_geometry(a.mask)[3][3], a.mask.shape[0])
    # Scene B: a wide low object (a bed) the product would cover a sliver of.
    _, _, b = _analysis((20, 280, 60), seed=4)
    fit_a = place_product(alpha, a, width, similarity=0.6, product_type="Chair",
                          scene_category="chair")  # fmt: skip
    fit_b = place_product(alpha, b, width, similarity=0.9, product_type="Chair",
                          scene_category="bed")  # fmt: skip
    assert fit_a.mode == "replace" and fit_a.parts["coverage"] >= MIN_COVERAGE
    assert fit_a.parts["category"] == 1.0 and fit_b.parts["category"] == 0.5
    assert fit_a.score > fit_b.score
    # B is kept, but as an insert in front of the bed (nothing to inpaint), on free floor.
    assert fit_b.mode == "insert" and "coverage" not in fit_b.parts
    assert fit_b.alignment.box[3] > mask_geometry(b.mask)[3][3]
    assert same_kind("Folding chairs", "chair") == 1.0 and same_kind(None, "chair") is None
    # Catalog words against a scene parser's (ADE20K) names; "of" is no shared kind.
    assert same_kind("Chest of 3 drawers", "chest of drawers") == 1.0
    assert same_kind("Couch", "sofa") == 1.0 and same_kind("Bookshelf", "bookcase") == 1.0
    assert same_kind("Piece of art", "chest of drawers") == 0.5
    assert same_kind("Wardrobe with 3 doors", "Table with 2 chairs") == 0.5
    assert same_kind("Bookcase", "Shelving unit") == 1.0


def _chair_alpha() -> np.ndarray:
    """A chair seen from the front and a little above: front legs lower than the back ones."""
    alpha = np.zeros((140, 60), np.float32)
    alpha[10:90, 5:55] = 1.0  # back and seat
    for x0, bottom in ((5, 139), (45, 139), (14, 120), (36, 120)):  # front, front, back, back
        alpha[90 : bottom + 1, x0 : x0 + 6] = 1.0
    return alpha


def test_an_insert_collides_only_with_what_stands_at_its_depth_or_nearer():
    scene, mask, analysis = _analysis((20, 280, 60), seed=4)
    alpha = _chair_alpha()
    free = place_product(alpha, analysis, width_cm=45.0)
    assert free.mode == "insert" and free.parts["free_floor"] == 1.0
    x0, y0, x1, y1 = (int(round(v)) for v in free.alignment.box)
    back = y1 - round(19 * free.alignment.scale)  # the back feet's row

    def placed_with(region: tuple[slice, slice]):
        objects = analysis.objects.copy()
        objects[region] = True
        return place_product(alpha, replace(analysis, objects=objects), width_cm=45.0)

    # Behind it (standing above its back feet): the chair stands in front, where it was.
    behind = placed_with(np.s_[y0 : back - 3, x0:x1])
    assert behind.alignment.box == free.alignment.box and behind.parts["free_floor"] == 1.0
    # Between its back and front feet, or nearer: a collision, so it moves.
    for bottom in (back + 3, y1 + 10):
        moved = placed_with(np.s_[y0:bottom, x0:x1])
        assert moved.alignment.box != free.alignment.box
    # A flat-bottomed product, enlarged (a small photo): behind it is anything whose lowest row
    # is above its own, even by one row.
    _, box_alpha = crop_to_content(*product_shot(30, 14))
    flat = place_product(box_alpha, analysis, width_cm=45.0)
    assert flat.alignment.scale > 2
    fx0, fy0, fx1, fy1 = (int(round(v)) for v in flat.alignment.box)
    objects = analysis.objects.copy()
    objects[fy0 : fy1 - 1, fx0:fx1] = True  # lowest row fy1 - 2, the product's fy1 - 1
    behind = place_product(box_alpha, replace(analysis, objects=objects), width_cm=45.0)
    assert behind.alignment.box == flat.alignment.box


def test_an_insert_changes_nothing_outside_the_product_and_its_shadows():
    scene, mask, analysis = _analysis((20, 280, 60), seed=4)
    rgb, alpha = crop_to_content(*product_shot(120, 60))
    fit = place_product(alpha, analysis, width_cm=45.0)
    assert fit.mode == "insert"
    pasted = paste_product(scene, analysis, rgb, alpha, fit.alignment, harmonize=False,
                           grain=False)  # fmt: skip
    x0, y0, x1, y1 = (int(v) for v in fit.alignment.box)
    far = np.ones(mask.shape, bool)
    far[max(0, y0 - 20) :, max(0, x0 - 60) : x1 + 60] = False
    assert np.array_equal(pasted.image[far], scene[far])  # the old object is untouched
    assert np.array_equal(pasted.image[mask & far], scene[mask & far])


# -- scene analysis and shadows ----------------------------------------------------------------
def _lit_room(shadow_side: int):
    """A plain room, a dark box on the floor and its shadow falling to one side."""
    h, w = 240, 320
    img = np.full((h, w, 3), 200, np.uint8)
    img[150:] = 160  # floor
    mask = np.zeros((h, w), bool)
    mask[120:200, 130:190] = True
    img[mask] = (40, 40, 40)
    shadow = np.zeros((h, w), bool)
    if shadow_side > 0:
        shadow[192:204, 150:230] = True
    else:
        shadow[192:204, 90:170] = True
    img[shadow & ~mask] = 90
    return img, mask


@pytest.mark.parametrize("side", [1, -1])
def test_the_old_objects_shadow_gives_the_lights_side_and_darkness(side):
    img, mask = _lit_room(side)
    box = (130, 120, 190, 200)
    shadow, strength, light_dx, _ = object_shadow(img, mask, box)
    assert np.sign(light_dx) == side and abs(light_dx) > 0.3
    assert 0.1 < strength < 0.5  # 90 on a 160 floor, over part of the strip
    assert shadow.any() and not shadow[:150].any()
    # A plain floor without a shadow: no light direction is invented.
    plain = img.copy()
    plain[150:][~mask[150:]] = 160
    assert object_shadow(plain, mask, box)[1] == 0.0
    assert object_shadow(plain, mask, box)[3] == DEFAULT_SOFTNESS


@pytest.mark.parametrize("sigma", [1.5, 6.0, 8.0])
def test_the_old_objects_shadow_gives_its_softness(sigma):
    """A shadow whose edge is blurred by sigma: its softness is sigma over the object's height,
    so the new product's shadow is as soft as the room's."""
    h, w = 400, 500
    img = np.full((h, w, 3), 200, np.float32)
    img[250:] = 170  # floor
    mask = np.zeros((h, w), bool)
    mask[200:320, 200:260] = True  # 120 px tall, standing on row 319
    darkness = np.zeros((h, w), np.float32)
    darkness[300:340, 200:272] = 0.45  # the shadow reaches 12 px right of the object
    darkness = cv2.GaussianBlur(darkness, (0, 0), sigma)
    img *= (1 - darkness)[..., None]
    img[mask] = (60, 50, 40)
    img = np.clip(img + np.random.default_rng(0).normal(0, 1.5, img.shape), 0, 255)
    _, strength, light_dx, softness = object_shadow(
        img.astype(np.uint8), mask, (200, 200, 260, 320)
    )
    assert strength > 0.1 and light_dx > 0.3
    assert softness != DEFAULT_SOFTNESS  # read, not the fallback
    assert softness * 120 == pytest.approx(sigma, rel=0.25)
    assert edge_softness(np.full(20, 0.3, np.float32)) is None  # no edge in view


def test_the_cast_shadow_is_as_soft_as_the_rooms():
    scene, mask = room(0, box=(400, 60, 90), size=(600, 900))
    analysis = analyse_scene(scene, mask)
    analysis.shadow_strength, analysis.light_dx = 0.5, 1.0
    rgb, alpha = crop_to_content(*product_shot())
    fit = place_product(alpha, analysis)

    def darkened(softness: float) -> np.ndarray:
        analysis.shadow_softness = softness
        out = paste_product(scene, analysis, rgb, alpha, fit.alignment, harmonize=False,
                            grain=False)  # fmt: skip
        return (scene.astype(int) - out.image.astype(int)).sum(axis=2) > 6

    hard, soft = darkened(0.01), darkened(0.08)
    assert soft.sum() > 1.3 * hard.sum()  # a soft shadow spreads wider


def test_cast_shadow_starts_at_the_feet_and_falls_away_from_the_light():
    alpha = np.zeros((200, 200), np.float32)
    alpha[60:150, 90:96] = 1  # two legs and a seat
    alpha[60:150, 124:130] = 1
    alpha[60:70, 90:130] = 1
    right = cast_shadow(alpha, light_dx=1.0, strength=0.5)
    left = cast_shadow(alpha, light_dx=-1.0, strength=0.5)
    for x0, x1, y in support_points(alpha):
        assert right[y, x0:x1].max() > 0.1  # it touches every foot
    cols = np.arange(200)
    centre = lambda s: (s.sum(axis=0) * cols).sum() / s.sum()  # noqa: E731
    assert centre(right) > 110 > centre(left)
    assert right[:40].max() < 0.01  # on the floor, not on the wall above the product


def test_wide_blur_is_the_gaussian_blur_at_a_fraction_of_the_cost():
    image = np.zeros((700, 900), np.float32)
    cv2.circle(image, (450, 400), 150, 1.0, -1)
    image[600:, 50:200] = 1.0  # reaching the frame's edge
    for sigma in (3.0, 20.0, 60.0):
        exact = cv2.GaussianBlur(image, (0, 0), sigma)
        fast = wide_blur(image, sigma)
        assert fast.shape == image.shape and fast.dtype == np.float32
        assert np.abs(fast - exact).max() < 0.003  # edges included


@pytest.mark.parametrize(("light_dx", "softness"), [(-1.0, 0.03), (0.0, 0.03), (1.0, 0.1)])
def test_the_paste_works_on_a_region_that_holds_all_its_shadows(light_dx, softness):
    """What ``paste_product`` computes on its work region equals the whole frame's: the shadows
    of a tall product under the most slanted light fade out inside the region, and nothing
    outside it changes."""
    h, w = 1400, 1800
    alpha = np.zeros((h, w), np.float32)
    alpha[550:850, 850:910] = 1.0  # a tall cabinet standing on row 849
    box = (850, 550, 910, 850)
    x0, y0, x1, y1 = work_region(box, (h, w), shadow=True, softness=softness)
    darkness = contact_shadow(alpha) + cast_shadow(alpha, light_dx, 0.9, softness=softness)
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert darkness[outside].max() < 0.5 / 255
    assert darkness[~outside].max() > 0.3
    # Without shadows the region is the product and a thin ring: far smaller.
    bx0, by0, bx1, by1 = work_region(box, (h, w), shadow=False)
    assert (bx1 - bx0) * (by1 - by0) < 0.5 * (x1 - x0) * (y1 - y0)


def test_nothing_outside_the_work_region_changes_and_the_region_is_placement_invariant():
    scene, mask = room(0, box=(400, 60, 90), size=(600, 900))
    analysis = analyse_scene(scene, mask)
    analysis.shadow_strength, analysis.light_dx = 0.4, 0.8
    rgb, alpha = crop_to_content(*product_shot())
    fit = place_product(alpha, analysis)
    options = dict(harmonize=False, grain=False)
    pasted = paste_product(scene, analysis, rgb, alpha, fit.alignment, **options)
    x0, y0, x1, y1 = work_region(fit.alignment.box, scene.shape[:2], shadow=True)
    changed = np.any(pasted.image != scene, axis=2)
    assert changed.any() and not changed[:y0].any() and not changed[:, :x0].any()
    assert not changed[y1:].any() and not changed[:, x1:].any() and y1 - y0 < 300
    # The product's coverage is exactly the whole frame's warp, and its colours are the whole
    # frame's harmonisation (whose ring of scene reaches past the product).
    colour, whole = warp_product(rgb, alpha, fit.alignment, scene.shape[:2])
    assert np.abs(pasted.alpha - feather(whole)).max() < 1e-4
    # A plate whose ring is dark near the product and bright further out: a ring cut short
    # would see only the dark.
    near = cv2.dilate((whole >= 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    plate = np.full_like(scene, 40)
    plate[~near] = 250
    harmonised = composite(plate, harmonise(colour, feather(whole), plate), feather(whole))
    coloured = paste_product(plate, analysis, rgb, alpha, fit.alignment, shadow=False, grain=False)
    body = feather(whole) >= 0.5
    assert np.abs(coloured.image[body].astype(int) - harmonised[body].astype(int)).max() <= 1
    assert not np.array_equal(coloured.image, paste_product(
        scene, analysis, rgb, alpha, fit.alignment, shadow=False, grain=False, harmonize=False
    ).image)  # fmt: skip
    # The same scene inside a bigger frame (every region fits unclipped): the same pixels.
    pad = 200
    big = cv2.copyMakeBorder(scene, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    big_mask = np.pad(analysis.mask, pad)
    big_analysis = analyse_scene(big, big_mask)
    big_analysis.shadow_strength, big_analysis.light_dx = 0.4, 0.8
    a = fit.alignment
    moved = type(a)(a.scale, a.dx + pad, a.dy + pad, tuple(v + pad for v in a.box))
    inside = paste_product(big, big_analysis, rgb, alpha, moved, **options)
    crop = inside.image[pad:-pad, pad:-pad].astype(int)
    assert np.abs(crop - pasted.image.astype(int)).max() <= 2
    assert inside.ssim == pytest.approx(pasted.ssim, abs=1e-3)


def test_grain_is_matched_to_the_scene():
    rng = np.random.default_rng(0)
    noisy = np.clip(120 + rng.normal(0, 6, (120, 160)), 0, 255).astype(np.uint8)
    assert noise_sigma(noisy) == pytest.approx(6, rel=0.15)
    scene = np.dstack([noisy] * 3)
    product = np.full((120, 160, 3), 100, np.float32)
    alpha = np.ones((120, 160), np.float32)
    grained = match_grain(product, alpha, scene)
    grey = grained.mean(axis=2).astype(np.uint8)
    assert noise_sigma(grey) == pytest.approx(6, rel=0.25)
    # A product already as noisy as the scene is left alone.
    assert np.array_equal(match_grain(scene.astype(np.float32), alpha, scene), scene)


# -- realism -----------------------------------------------------------------------------------
def test_kid_and_fd_separate_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (60, 16)), rng.normal(0, 1, (60, 16))
    shifted = rng.normal(0.8, 1, (60, 16))
    same, _ = kid(a, b, subsets=20)
    different, _ = kid(a, shifted, subsets=20)
    assert abs(same) < 0.2 * different
    assert frechet_distance(a, b) < frechet_distance(a, shifted)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-3)


def _colour_features(images):
    """A tiny stand-in for deep features: per-channel means and spreads."""
    return np.array([[*im.mean(axis=(0, 1)), *im.std(axis=(0, 1))] for im in images]) / 50


def test_realism_reports_kid_and_fd():
    rng = np.random.default_rng(0)
    real = [np.full((32, 32, 3), rng.integers(100, 120), np.uint8) for _ in range(10)]
    fake = [np.full((32, 32, 3), rng.integers(180, 200), np.uint8) for _ in range(10)]
    near = realism(real, real[::-1], _colour_features, subsets=10)
    far = realism(real, fake, _colour_features, subsets=10)
    assert far["kid_x1000"] > near["kid_x1000"] + 10 and far["fd"] > near["fd"]
    assert set(far) == {"real", "generated", "kid_x1000", "kid_x1000_std", "fd"}


def _chair_and_cabinet(folder) -> None:
    """Two products to evaluate, with their CSV (``products.csv``): a typed and sized chair,
    a cabinet with a type only."""
    save_image(folder / "chair.png", product_shot(120, 60)[0])
    save_image(folder / "cabinet.png", product_shot(150, 90)[0])
    (folder / "products.csv").write_text(
        "id,image,type,size\nc1,chair.png,Chair,45x50 cm\nc2,cabinet.png,Cabinet,\n"
    )


def test_eval_copy_paste_writes_results_sheets_and_realism(tmp_path):
    scenes, reference = tmp_path / "scenes", tmp_path / "reference"
    boxes = [(130, 70, 90), (60, 90, 120), (180, 60, 80)]
    catalog_of_rooms(tmp_path, boxes, seed=20, folder="scenes", csv="scenes.csv")
    for i, box in enumerate(boxes):
        save_image(reference / f"real{i}.png", room(40 + i, box=box)[0])
    for i in range(3, 9):
        save_image(reference / f"real{i}.png", room(40 + i)[0])
    _chair_and_cabinet(tmp_path)
    engine = StagingEngine(device="cpu")
    out = tmp_path / "out"
    # The scenes' masks come from a CSV (no segmentation model in tests): index them first.
    engine.update_index(out / "index", scenes, csv=tmp_path / "scenes.csv", progress=False)
    report = evaluate_copy_paste(
        engine, tmp_path / "products.csv", scenes, reference, out, _colour_features, k=2,
        progress=False,
    )  # fmt: skip
    assert report["products"] == 2 and report["with_results"] == 2 and report["results"] == 4
    assert report["scene_parser"] is None  # none on disk here; said, as the figures depend on it
    assert sorted(p.name for p in (out / "results").iterdir()) == [
        "c1_1.jpg", "c1_2.jpg", "c2_1.jpg", "c2_2.jpg"
    ]  # fmt: skip
    assert [p.endswith("sheet_1.png") for p in report["sheets"]] == [True]
    for key in (
        "realism",
        "realism_naive_paste",
        "realism_real_vs_real",
        "realism_same_scenes_untouched",
        "realism_same_scenes_naive_paste",
        "realism_same_place_naive_paste",
    ):
        assert "kid_x1000" in report[key]
    assert "kind_inference" not in report  # types were given
    saved = json.loads((out / "report.json").read_text())
    result = saved["per_product"][0]["results"][0]
    assert result["fit"] > 0 and "fit_similarity" in result
    assert saved["per_product"][0]["product"]["inferred_from"] == "given"


def test_eval_copy_paste_bare_reads_the_kind_from_the_catalog_and_scores_it(tmp_path):
    """--bare withholds type and size; the catalog's one typed shot kind is a chair, so the
    chair is read right and the cabinet wrong: 1 of 2."""
    scenes, reference = tmp_path / "scenes", tmp_path / "reference"
    catalog_of_rooms(tmp_path, [(130, 70, 90), (60, 90, 120)], seed=20, folder="scenes")
    lines = (tmp_path / "catalog.csv").read_text().splitlines()
    lines = [lines[0] + ",type,size"] + [line + ",," for line in lines[1:]]
    save_image(scenes / "chair-shot.png", product_shot(118, 62)[0])
    lines.append("scenes/chair-shot.png,,Chair,45x50 cm")
    (tmp_path / "catalog.csv").write_text("\n".join(lines) + "\n")
    for i in range(8):
        save_image(reference / f"real{i}.png", room(40 + i)[0])
    _chair_and_cabinet(tmp_path)
    engine = StagingEngine(device="cpu")
    out = tmp_path / "out"
    engine.update_index(out / "index", scenes, csv=tmp_path / "catalog.csv", progress=False)
    report = evaluate_copy_paste(
        engine, tmp_path / "products.csv", scenes, reference, out, _colour_features, k=1,
        progress=False, bare=True,
    )  # fmt: skip
    assert report["kind_inference"] == {"right": 1, "read": 2, "typed": 2}
    saved = json.loads((out / "report.json").read_text())
    told = [entry["product"] for entry in saved["per_product"]]
    assert [t["inferred_from"] for t in told] == ["catalog", "catalog"]
    assert [t["product_size"] for t in told] == ["45x50 cm", "45x50 cm"]


def test_cli_eval_realism_needs_its_feature_weights(tmp_path):
    save_image(tmp_path / "a" / "x.png", np.zeros((8, 8, 3), np.uint8))
    result = CliRunner().invoke(
        app, ["eval", "realism", "--real", str(tmp_path / "a"), "--generated", str(tmp_path / "a")]
    )
    assert isinstance(result.exception, ModelNotAvailableError)  # main() prints it, exit 2
    assert "staging models pull mobilenet_v2" in str(result.exception)
