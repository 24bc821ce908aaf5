"""The ``exemplar`` fill (issue 17, point 3): real texture copied along the same rows of the
same surface, never from the hole or from other objects; the rest left to the fallback."""

from __future__ import annotations

import numpy as np

from staging.evaluate.inpaint import inpaint_metrics, texture_ratio
from staging.inpaint import create_inpainter
from staging.inpaint.exemplar import ExemplarInpainter, offset_fill
from staging.runtime import Runtime


def _planks(h: int = 120, w: int = 240, period: int = 12) -> np.ndarray:
    """A floor of vertical planks (a joint every ``period`` px) with some grain."""
    rng = np.random.default_rng(0)
    image = np.zeros((h, w, 3), np.float32)
    image[:] = (150, 110, 70)
    image[:, ::period] = (80, 55, 35)
    image += rng.normal(0, 3, (1, w, 3))  # grain along the planks
    return np.clip(image, 0, 255).astype(np.uint8)


def _hole(shape, box) -> np.ndarray:
    hole = np.zeros(shape, bool)
    y0, y1, x0, x1 = box
    hole[y0:y1, x0:x1] = True
    return hole


def test_textured_floor_is_continued_not_smeared():
    floor = _planks()
    hole = _hole(floor.shape[:2], (30, 90, 100, 150))
    exemplar = create_inpainter("exemplar", Runtime(None, "cpu", 1)).inpaint(floor, hole)
    structure = create_inpainter("structure", Runtime(None, "cpu", 1)).inpaint(floor, hole)
    assert texture_ratio(exemplar, floor, hole) > 0.9  # the planks' own texture
    assert texture_ratio(structure, floor, hole) < 0.6  # what the diffusion leaves
    assert inpaint_metrics(exemplar, floor, hole)["hole_psnr"] > 35  # the joints line up
    assert np.array_equal(exemplar[~hole], floor[~hole])


def test_never_copies_from_other_objects():
    floor = _planks(period=10)
    red = np.zeros(floor.shape[:2], bool)
    red[20:100, 160:200] = True  # a red object to the right of the hole
    scene = floor.copy()
    scene[red] = (220, 20, 20)
    hole = _hole(floor.shape[:2], (30, 90, 100, 140))
    filled, unfilled = offset_fill(scene, hole, avoid=red)
    assert not unfilled.any()
    is_red = (filled[..., 0] > 180) & (filled[..., 1] < 60)
    assert not is_red[hole].any()
    filled, _ = offset_fill(scene, hole)  # nothing to avoid: the best match may be anywhere
    assert filled.shape == scene.shape


def test_each_surface_copies_from_itself_and_no_source_goes_to_the_fallback():
    scene = _planks(period=10)
    scene[:60] = (200, 200, 210)  # a plain wall above row 60
    surfaces = np.zeros(scene.shape[:2], np.int8)
    surfaces[60:] = 1
    hole = _hole(scene.shape[:2], (40, 90, 100, 140))  # across the wall/floor line
    filled, unfilled = offset_fill(scene, hole, surfaces=surfaces)
    assert not unfilled.any()
    assert (filled[40:60, 100:140] == (200, 200, 210)).all()  # wall from the wall
    floor, truth = filled[60:90, 100:140].astype(int), scene[60:90, 100:140].astype(int)
    joints = lambda rgb: rgb[..., 0].mean(axis=0) < 115  # noqa: E731 - the dark columns
    assert np.array_equal(joints(floor), joints(truth))  # the planks' joints continue
    assert np.abs(floor - truth).mean() < 6  # only the grain differs
    everything = np.ones(scene.shape[:2], bool)
    _, unfilled = offset_fill(scene, hole, avoid=everything & ~hole)
    assert unfilled.sum() == hole.sum()  # no clean source anywhere

    calls = []

    class Fallback(ExemplarInpainter):
        def __init__(self):
            pass

        def inpaint(self, image, hole):
            calls.append(int(hole.sum()))
            return image

    ExemplarInpainter(Fallback()).fill_scene(scene, hole, avoid=everything & ~hole)
    assert calls == [int(hole.sum())]


def test_sources_stay_on_the_parts_own_surface():
    scene = np.full((100, 240, 3), 128, np.uint8)  # flat: every offset continues the ring
    scene[40:60, 15:35] = (220, 20, 20)  # inside the leftmost candidate source, not its ring
    surfaces = np.zeros(scene.shape[:2], np.int8)
    surfaces[:, :60] = 1  # another surface on the left
    hole = _hole(scene.shape[:2], (30, 70, 150, 190))
    filled, _ = offset_fill(scene, hole, surfaces=surfaces)
    assert (filled[hole] == 128).all()  # copied from its own surface, not the red one


def test_the_copy_meets_its_surround_without_a_step():
    ramp = np.tile(50 + 0.5 * np.arange(240, dtype=np.float32), (100, 1))  # lit from the right
    scene = np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)
    hole = _hole(scene.shape[:2], (30, 70, 100, 140))
    filled, _ = offset_fill(scene, hole)
    error = np.abs(filled.astype(int) - scene.astype(int))[hole]
    assert error.mean() < 3  # the copy's brightness is corrected to its surround's
