"""Copy-paste staging (paper §5.3): alignment, removal, pasting, shadows, the engine and CLI.

Scenes are synthetic rooms (wall, floorboards, a window) with one red product on the floor,
so every geometric claim — centre of mass, floor line, scale, aspect, what is left of the old
product — can be checked against ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from staging import StagingEngine, StagingError
from staging.catalog import CatalogIndex
from staging.cli import app
from staging.compose.align import align_product, crop_to_content, mask_geometry, warp_product
from staging.compose.blend import (
    contact_shadow,
    feather,
    harmonise,
    product_ssim,
    support_points,
)
from staging.compose.copy_paste import main_object, paste_product, removal_hole, scene_problem
from staging.compose.scene import analyse_scene
from staging.inpaint import create_inpainter
from staging.inpaint.base import inpaint_downscaled
from staging.io import save_image
from staging.runtime import Runtime
from tests.helpers import rooms
from tests.helpers.rooms import product_shot, room

demo_index = rooms.demo_index  # the shared fixture, used by the engine and CLI tests here


# -- alignment ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(120, 60), (60, 120), (100, 100)])
def test_alignment_matches_area_centre_and_floor_and_keeps_aspect(shape):
    _, scene_mask = room(0, box=(140, 70, 90))
    rgb, alpha = crop_to_content(*product_shot(*shape))
    alignment = align_product(alpha, scene_mask, height_tolerance=0.2)
    colour, placed = warp_product(rgb, alpha, alignment, scene_mask.shape)
    new_area, new_cx, _, (nx0, ny0, nx1, ny1) = mask_geometry(placed >= 0.5)
    old_area, old_cx, _, (_, oy0, _, oy1) = mask_geometry(scene_mask)
    assert abs(new_cx - old_cx) <= 1.0  # centres of mass aligned
    assert abs(ny1 - oy1) <= 1  # bottom on the old floor line: nothing floats
    # Aspect ratio never distorted.
    assert (ny1 - ny0) / (nx1 - nx0) == pytest.approx(shape[0] / shape[1], rel=0.05)
    # Area matched unless the height tolerance had to step in.
    height_ratio = (ny1 - ny0) / (oy1 - oy0)
    assert 0.8 - 0.02 <= height_ratio <= 1.2 + 0.02
    if 0.82 < height_ratio < 1.18:
        assert new_area / old_area == pytest.approx(1.0, rel=0.05)
    # Solid product pixels keep the product's colours.
    core = placed >= 0.999
    assert np.abs(colour[core] - np.array([30, 60, 170])).max(axis=1).min() < 1.0


def test_alignment_stays_inside_the_frame():
    scene_mask = np.zeros((100, 100), bool)
    scene_mask[10:95, 90:100] = True  # a tall narrow product at the right edge
    _, alpha = crop_to_content(*product_shot(60, 120))  # a wide one replaces it
    a = align_product(alpha, scene_mask)
    x0, y0, x1, y1 = a.box
    assert x0 >= 0 and y0 >= 0 and x1 <= 100 + 1e-6 and y1 <= 100 + 1e-6


def test_empty_masks_are_clear_errors():
    with pytest.raises(StagingError, match="empty"):
        crop_to_content(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.float32))
    with pytest.raises(StagingError, match="empty"):
        removal_hole(np.zeros((5, 5), bool))


# -- removal and inpainting --------------------------------------------------------------------
def test_removal_hole_covers_the_product_its_rim_and_its_shadow():
    _, mask = room(1)
    hole = removal_hole(mask)
    assert hole[mask].all()
    ys = np.flatnonzero(mask.any(axis=1))
    hole_ys = np.flatnonzero(hole.any(axis=1))
    assert hole_ys[-1] > ys[-1] + 3  # reaches below the product, where its shadow lies
    assert hole_ys[0] < ys[0]  # a rim all round
    assert hole.mean() < 3 * mask.mean()  # but not the whole room


def test_main_object_keeps_the_largest_part():
    mask = np.zeros((50, 50), bool)
    mask[5:10, 5:10] = True
    mask[20:45, 20:45] = True
    main = main_object(mask)
    assert main[30, 30] and not main[7, 7]


def test_scene_problems():
    _, mask = room(2)
    assert scene_problem(mask) is None
    high = np.zeros_like(mask)
    high[10:60, 100:160] = True  # a wall cabinet
    assert "float" in scene_problem(high)
    assert "only" in scene_problem(np.pad(np.ones((2, 2), bool), ((200, 54), (0, 318))))
    assert "too little" in scene_problem(np.ones_like(mask))


def test_downscaled_inpainting_is_exact_outside_the_hole_and_removes_the_product():
    scene, mask = room(3, size=(600, 800), box=(300, 150, 200))
    hole = removal_hole(mask)
    inpainter = create_inpainter("structure", Runtime(None, "cpu", 1))
    out = inpaint_downscaled(inpainter, scene, hole, max_side=256)
    assert np.array_equal(out[~hole], scene[~hole])
    red = (out[..., 0] > 150) & (out[..., 1] < 80)
    assert red[hole].mean() < 0.01  # the red product is gone
    # The fill looks like floor/wall, with grain rather than a flat smear.
    assert out[hole].std(axis=0).max() > 2.0


# -- pasting -----------------------------------------------------------------------------------
def _plate(seed=4):
    scene, mask = room(seed)
    inpainter = create_inpainter("structure", Runtime(None, "cpu", 1))
    return scene, mask, inpainter.inpaint(scene, removal_hole(mask))


def _paste(plate, mask, rgb, alpha, **options):
    """Paste as the engine does without a real width: the old object's size and place."""
    rgb, alpha = crop_to_content(rgb, alpha)
    analysis = analyse_scene(plate, mask)
    return paste_product(plate, analysis, rgb, alpha, align_product(alpha, mask), **options)


def test_paste_is_exact_without_harmonisation_and_bounded_with_it():
    _, mask, plate = _plate()
    rgb, alpha = product_shot()
    plain = _paste(plate, mask, rgb, alpha, shadow=False, harmonize=False, grain=False)
    assert plain.ssim == 1.0
    outside = plain.alpha == 0
    assert np.array_equal(plain.image[outside], plate[outside])  # nothing else touched
    solid = plain.alpha >= 0.999
    assert solid.sum() > 1000
    assert (np.abs(plain.image[solid].astype(int) - (30, 60, 170)).max(axis=1) <= 1).mean() > 0.8

    tinted = _paste(plate, mask, rgb, alpha, shadow=False, harmonize=True, grain=False)
    assert 0.9 < tinted.ssim < 1.0
    shift = np.abs(tinted.image[solid].astype(int) - plain.image[solid].astype(int))
    # Small and bounded (caps of 8 L and 4 a/b units): the product stays the product.
    assert 0 < shift.mean() <= 12.0 and shift.max() <= 20


def test_contact_shadow_darkens_the_floor_under_the_product_only():
    _, mask, plate = _plate()
    rgb, alpha = product_shot()
    with_shadow = _paste(plate, mask, rgb, alpha, shadow=True, harmonize=False, grain=False)
    without = _paste(plate, mask, rgb, alpha, shadow=False, harmonize=False, grain=False)
    _, _, _, (x0, y0, x1, y1) = mask_geometry(with_shadow.alpha >= 0.5)
    below = (slice(y1, y1 + 4), slice(x0, x1))
    darker = without.image[below].astype(float).mean() - with_shadow.image[below].mean()
    assert darker > 5
    far = (slice(0, 20), slice(0, 40))
    assert np.array_equal(with_shadow.image[far], without.image[far])
    assert with_shadow.ssim == 1.0


def test_blend_helpers():
    hard = np.zeros((40, 40), np.float32)
    hard[10:30, 10:30] = 1
    soft = feather(hard)
    assert soft[20, 20] == 1.0 and 0 < soft[10, 20] < 1 and soft[0, 0] == 0
    shadow = contact_shadow(hard)
    assert shadow[31:34, 15:25].mean() > shadow[0:5].mean()
    rgb = np.full((40, 40, 3), 100, np.float32)
    scene = np.full((40, 40, 3), 250, np.uint8)
    moved = harmonise(rgb, hard, scene, amount=1.0, max_lightness=5, max_chroma=2)
    assert 0 < moved[20, 20].mean() - 100 <= 6
    assert product_ssim(scene, scene.astype(np.float32), hard) == 1.0


# -- engine and CLI ----------------------------------------------------------------------------


def test_stage_copy_paste_end_to_end(demo_index):
    index, truths = demo_index
    engine = StagingEngine(device="cpu")
    product, alpha = product_shot()
    calls = []
    results = engine.stage_copy_paste(
        product, k=3, index=index, progress=lambda f, m: calls.append(f)
    )
    assert len(results) == 3
    assert calls[0] == 0.0 and calls[-1] == 1.0 and calls == sorted(calls)
    fits = [r.scores["fit"] for r in results]
    assert fits == sorted(fits, reverse=True)
    for staged in results:
        old = truths[staged.source["id"]]
        assert staged.source["id"].startswith("room")  # staged scenes only
        assert staged.source["placement"] == "replace"  # no real width: the paper's rule
        # Tone matching and grain move the product a little, never much.
        assert staged.mode == "copy-paste" and 0.8 < staged.ssim < 1.0
        assert staged.image.shape == (*old.shape, 3)
        _, new_cx, _, (_, _, _, ny1) = mask_geometry(staged.mask)
        _, old_cx, _, (_, _, _, oy1) = mask_geometry(old)
        assert abs(ny1 - oy1) <= 1 and abs(new_cx - old_cx) <= 1.5
        # No remnant of the old red product outside the new one.
        pixels = staged.image.astype(int)
        red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
        assert red[~staged.mask].sum() < 0.01 * old.sum()
        assert json.dumps(staged.describe())


def test_stage_copy_paste_uses_a_given_mask(demo_index):
    index, _ = demo_index
    engine = StagingEngine(device="cpu")
    product, alpha = product_shot()
    half = alpha.copy()
    half[:100] = 0  # the user kept only the lower half of the product
    results = engine.stage_copy_paste(product, k=1, index=index, mask=half > 0.5)
    full = engine.stage_copy_paste(product, k=1, index=index, mask=alpha > 0.5)
    _, _, _, (x0, y0, x1, y1) = mask_geometry(results[0].mask)
    _, _, _, (fx0, fy0, fx1, fy1) = mask_geometry(full[0].mask)
    # Half the product, scaled to the old product's size: wider relative to its height.
    assert (x1 - x0) / (y1 - y0) > 1.5 * (fx1 - fx0) / (fy1 - fy0)
    with pytest.raises(StagingError, match="empty"):
        engine.stage_copy_paste(product, k=1, index=index, mask=np.zeros_like(alpha))


def test_stage_copy_paste_errors(tmp_path, demo_index):
    index, _ = demo_index
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    with pytest.raises(StagingError, match="k must be"):
        engine.stage_copy_paste(product, k=0, index=index)
    with pytest.raises(StagingError, match="no staged images"):
        engine.stage_copy_paste(product, k=1, index=index, category="sofa")
    with pytest.raises(StagingError, match="needs an index"):
        engine.stage_copy_paste(product, k=1)


def test_an_index_whose_scenes_were_skipped_names_the_missing_model(tmp_path):
    """Offline, no weights, no CSV masks: the rooms are skipped at indexing, and copy-paste
    says that a segmentation model is missing, not merely "index more photos"."""
    folder = tmp_path / "images"
    scene, _ = room(3, box=(130, 70, 90))
    save_image(folder / "room.png", scene)
    save_image(folder / "studio.png", product_shot(100, 70)[0])
    engine = StagingEngine(device="cpu")
    index = CatalogIndex.open(tmp_path / "index", create=True)
    report = engine.update_index(index, folder, progress=False)
    assert [Path(p).name for p, _ in report.failed] == ["room.png"]
    with pytest.raises(StagingError) as info:
        engine.stage_copy_paste(product_shot()[0], k=1, index=tmp_path / "index")
    assert "staging models pull isnet-general-fp16" in str(info.value)


def test_cli_stage_copy_paste(tmp_path, demo_index):
    index, _ = demo_index
    product, _ = product_shot()
    save_image(tmp_path / "in" / "blue.png", product)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["stage", "copy-paste", str(tmp_path / "in"), "--index", str(index), "-k", "2"]
        + ["--out", str(out), "--format", "jpg"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "blue.copy-paste.json",
        "blue.copy-paste1.jpg",
        "blue.copy-paste2.jpg",
    ]
    summary = json.loads((out / "blue.copy-paste.json").read_text())
    assert [s["file"] for s in summary] == ["blue.copy-paste1.jpg", "blue.copy-paste2.jpg"]
    assert all(s["source"]["id"].startswith("room") and s["ssim"] > 0.8 for s in summary)
    assert cv2.imread(str(out / "blue.copy-paste1.jpg")).shape == (256, 320, 3)


def test_detail_transfer_puts_texture_back_but_not_other_objects_edges():
    from staging.inpaint.base import add_detail

    rng = np.random.default_rng(0)
    wall = np.full((120, 200, 3), 150.0) + rng.normal(0, 6, (120, 200, 1))  # textured wall
    wall[:, 40:44] = 20  # dark door frames on both sides, inside any source region
    wall[:, 160:164] = 20
    image = np.clip(wall, 0, 255).astype(np.uint8)
    hole = np.zeros((120, 200), bool)
    hole[30:90, 80:130] = True
    flat = np.full((120, 200, 3), 150.0, np.float32)
    out = add_detail(image, hole, flat)
    inner = hole & (cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3) > 4)
    texture = out[inner] - 150
    assert 3.0 < texture.std() < 9.0  # the wall's own texture level (6), not a flat smear
    assert np.abs(texture).max() < 40  # and no copied door frame edge (a 130-level step)
    assert np.array_equal(out[~hole], flat[~hole])


def test_faint_background_probability_is_not_pasted(demo_index):
    """A saliency net's few-percent probabilities over the background are not product: no
    ghost of the product photo's backdrop in the scene, and the floor line stays right."""
    from staging.segment.base import Segmentation

    index, truths = demo_index
    product, alpha = product_shot()
    prob = np.maximum(alpha, 0.04).astype(np.float32)  # faint everywhere, as u2netp leaves
    seg = Segmentation(product, prob, "test")
    assert seg.alpha[0, 0] == 0 and seg.alpha[100, 100] == 1.0
    cutout_alpha = np.asarray(seg.cutout)[..., 3]
    assert cutout_alpha[0, 0] == 0 and cutout_alpha[100, 100] == 255  # no ghost in the cutout
    engine = StagingEngine(device="cpu")
    faint = engine.stage_copy_paste(product, k=1, index=index, mask=prob)[0]
    clean = engine.stage_copy_paste(product, k=1, index=index, mask=alpha)[0]
    assert np.abs(faint.alpha - clean.alpha).max() < 0.05
    assert np.abs(faint.image.astype(int) - clean.image.astype(int)).max() <= 12


def _chair_alpha() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A chair in three-quarter view: a seat, two front legs ending lower in the picture than
    the two back legs (they stand further back on the floor). Returns alpha and the leg tips."""
    alpha = np.zeros((240, 240), np.float32)
    alpha[60:110, 60:180] = 1  # back and seat
    tips = [(70, 200), (160, 200), (95, 175), (185, 175)]  # (x, lowest row)
    for x, y in tips:
        alpha[100 : y + 1, x - 3 : x + 4] = 1
    return alpha, tips


def test_support_points_are_the_leg_tips_front_and_back():
    alpha, tips = _chair_alpha()
    feet = support_points(alpha)
    assert sorted((y, (x0 + x1 - 1) // 2) for x0, x1, y in feet) == sorted((y, x) for x, y in tips)
    box = np.zeros((100, 100), np.float32)
    box[20:70, 10:90] = 1
    assert support_points(box) == [(10, 90, 69)]  # a flat bottom stands on its whole edge
    assert support_points(np.zeros((10, 10), np.float32)) == []


def test_the_contact_shadow_touches_every_foot_and_not_the_air_below():
    alpha, tips = _chair_alpha()
    shadow = contact_shadow(alpha)
    peak = float(shadow.max())
    for x, y in tips:  # right under each tip, back legs included
        assert shadow[y + 1 : y + 3, x - 2 : x + 3].mean() > 0.5 * peak, (x, y)
    assert shadow[215:, :].max() < 0.25 * peak  # nothing detached below the front legs
    assert shadow[:55].max() == 0  # nothing above the product
