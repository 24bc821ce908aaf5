"""Scene parsing (:mod:`staging.segment.parse`): label groups, clicks, what copy-paste does with
a parse (inserts keep clear of furniture only the parser names; the replaced object's kind),
and the transformers backends (``upernet-convnext-tiny-ade``, ``segformer-ade``) on tiny
models of their architectures built here.

No real parser weights exist on this machine, so the scenes are the synthetic rooms of
test_copy_paste with a parse drawn to match them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from staging import StagingEngine
from staging.compose.align import crop_to_content, mask_geometry
from staging.compose.fit import place_product
from staging.compose.scene import SceneCache, analyse_scene
from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError
from staging.io import save_image, save_mask
from staging.segment import parse as parse_module
from staging.segment.parse import SceneParse, SceneParser, create_parser, synonyms
from tests.helpers.rooms import catalog_of_rooms, product_shot, room

NAMES = ("wall", "floor;flooring", "chair", "bed ", "rug;carpet;carpeting", "background")
WALL, FLOOR, CHAIR, BED, RUG, BACKGROUND = range(6)


def _bed_room():
    """A room whose only marked object is a wide bed (the product is inserted in front of it),
    and where the default insert stands."""
    scene, mask = room(4, box=(20, 280, 60), size=(256, 320))
    rgb, alpha = crop_to_content(*product_shot(120, 60))
    plain = place_product(alpha, analyse_scene(scene, mask), width_cm=45.0)
    assert plain.mode == "insert"
    return scene, mask, alpha, plain


def _parse_for(mask: np.ndarray, chair_box: tuple[int, int, int, int]) -> SceneParse:
    """Wall above the horizon, floor below, the bed where the mask is, a chair in ``box``."""
    h, w = mask.shape
    labels = np.full((h, w), WALL, np.int32)
    labels[int(h * 0.62) :] = FLOOR
    labels[mask] = BED
    x0, y0, x1, y1 = chair_box
    labels[y0:y1, x0:x1] = CHAIR
    return SceneParse(labels, NAMES)


def _chair_under(box, bed: np.ndarray) -> tuple[int, int, int, int]:
    """A chair standing where the default insert's feet are, in front of the bed (below its
    floor line, so none of it is in the bed's mask)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return x0, mask_geometry(bed)[3][3] + 1, x1, y1


def _overlap(alpha, fit, region: tuple[int, int, int, int]) -> float:
    from staging.compose.fit import _placed

    placed = _placed(alpha >= 0.5, fit.alignment, (256, 320))
    x0, y0, x1, y1 = region
    return float(placed[y0:y1, x0:x1].sum() / placed.sum())


# -- label groups --------------------------------------------------------------------------------
def test_labels_are_grouped_by_name_into_things_and_the_rest():
    labels = np.arange(6, dtype=np.int32).reshape(2, 3)
    parse = SceneParse(labels, NAMES)
    # Only the chair and the bed are things: not the wall, the floor, the rug, the background.
    assert parse.obstacles().tolist() == [[False, False, True], [True, False, False]]
    assert synonyms("rug;carpet;carpeting") == ["rug", "carpet", "carpeting"]
    assert synonyms("bed ") == ["bed"]


def test_labels_outside_the_names_are_nothing():
    names = ("chair", "floor", "table")  # things at both ends
    parse = SceneParse(np.array([[-1, 0, 1, 2, 3, 99]], np.int32), names)
    assert parse.obstacles().tolist() == [[False, True, False, True, False, False]]


def test_the_replaced_objects_own_label_is_not_an_obstacle_but_a_neighbour_is():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 10:30] = True
    labels = np.full((40, 60), FLOOR, np.int32)
    labels[8:32, 8:32] = BED  # the parser's bed spills 2 px past the segmenter's edge
    labels[10:30, 40:50] = CHAIR  # a chair beside it
    labels[10:20, 30:34] = CHAIR  # and one touching it, outside its mask
    others = SceneParse(labels, NAMES).others(mask)
    assert not others[labels == BED].any()
    assert others[labels == CHAIR].all()


def test_a_click_picks_the_connected_thing_not_every_thing_of_its_kind():
    labels = np.full((40, 60), FLOOR, np.int32)
    labels[10:30, 5:15] = CHAIR
    labels[10:30, 40:50] = CHAIR
    parse = SceneParse(labels, NAMES)
    nothing = np.zeros((40, 60), bool)
    picked = parse.thing_at((45, 20), ignore=nothing)
    assert picked.sum() == 200 and picked[10:30, 40:50].all()
    assert parse.thing_at((30, 35), ignore=nothing) is None  # the floor is no thing


def test_the_kind_of_an_object_is_the_thing_most_of_it_is():
    labels = np.full((10, 10), FLOOR, np.int32)
    labels[:, :6] = BED  # columns 0-5 bed, 6-7 chair, 8-9 floor
    labels[:, 6:8] = CHAIR
    parse = SceneParse(labels, NAMES)

    def columns(a: int, b: int) -> np.ndarray:
        mask = np.zeros((10, 10), bool)
        mask[:, a:b] = True
        return mask

    assert parse.kind_of(columns(0, 10)) == "bed"  # 60 % bed, 20 % chair
    assert parse.kind_of(columns(5, 10)) == "chair"  # 20 % bed, 40 % chair, 40 % floor
    assert parse.kind_of(columns(7, 10)) is None  # mostly floor: not a thing the parser knows


def test_a_parse_resized_keeps_its_labels():
    labels = np.zeros((4, 6), np.int32)
    labels[:, 3:] = CHAIR
    big = SceneParse(labels, NAMES).resized((12, 8))
    assert big.labels.shape == (8, 12) and (big.labels[:, 6:] == CHAIR).all()
    assert (big.labels[:, :6] == 0).all()


def test_unknown_parser_names_the_known_ones():
    with pytest.raises(UnknownNameError, match="segformer-ade"):
        create_parser("nope", None)


# -- scene analysis and fit ----------------------------------------------------------------------
def test_an_insert_keeps_clear_of_furniture_only_the_parser_names():
    scene, mask, alpha, plain = _bed_room()
    chair = _chair_under(plain.alignment.box, mask)
    parse = _parse_for(mask, chair)
    analysis = analyse_scene(scene, mask, parse=parse)
    assert analysis.objects[chair[1] : chair[3], chair[0] : chair[2]].all()
    parsed = place_product(alpha, analysis, width_cm=45.0)
    assert parsed.mode == "insert"
    # Without the parse the product stands on the chair; with it, beside it.
    assert _overlap(alpha, plain, chair) > 0.15
    assert _overlap(alpha, parsed, chair) == 0.0
    assert parsed.parts["free_floor"] == 1.0
    # Still in front of the bed, on the floor.
    assert parsed.alignment.box[3] > mask_geometry(mask)[3][3]


def test_the_parse_names_the_replaced_object_for_the_category_part():
    scene, mask, alpha, _ = _bed_room()
    analysis = analyse_scene(scene, mask, parse=_parse_for(mask, (0, 0, 1, 1)))
    assert analysis.category == "bed"
    assert analyse_scene(scene, mask).category is None
    chair = place_product(alpha, analysis, 45.0, product_type="Chair", scene_category="bed")
    bed = place_product(alpha, analysis, 45.0, product_type="Bed, double", scene_category="bed")
    assert chair.parts["category"] == 0.5 and bed.parts["category"] == 1.0


def test_a_click_on_furniture_only_the_parser_names_picks_it():
    scene, mask, _, plain = _bed_room()
    chair = _chair_under(plain.alignment.box, mask)
    parse = _parse_for(mask, chair)
    inside = ((chair[0] + chair[2]) / 2, (chair[1] + chair[3]) / 2)
    picked = analyse_scene(scene, mask, point=inside, parse=parse)
    assert picked.box == chair and picked.category == "chair"
    # Without the parse the click goes to the nearest marked object, the bed.
    assert analyse_scene(scene, mask, point=inside).box == mask_geometry(mask)[3]
    # A click on the bed, which the segmenter marked, still picks the segmenter's object.
    on_bed = analyse_scene(scene, mask, point=(30, 200), parse=parse)
    assert np.array_equal(on_bed.mask, mask)


def test_a_parse_of_another_size_is_resized_to_the_scene():
    scene, mask, alpha, plain = _bed_room()
    chair = _chair_under(plain.alignment.box, mask)
    parse = _parse_for(mask, chair)
    half = parse.resized((160, 128))
    analysis = analyse_scene(scene, mask, parse=half)
    assert analysis.category == "bed"
    assert analysis.objects[chair[1] + 2 : chair[3] - 2, chair[0] + 2 : chair[2] - 2].all()


def test_the_scene_cache_keeps_the_category(tmp_path):
    scene, mask, _, _ = _bed_room()
    analysis = analyse_scene(scene, mask, parse=_parse_for(mask, (0, 0, 1, 1)))
    cache = SceneCache(tmp_path)
    cache.put("k", analysis)
    assert cache.get("k").category == "bed"
    cache.put("n", analyse_scene(scene, mask))
    assert cache.get("n").category is None


# -- the engine ------------------------------------------------------------------------------------
class PlantedParser(SceneParser):
    """Returns a parse drawn for the test's room, whatever the image (a stand-in for SegFormer)."""

    name = "planted"

    def __init__(self, parse: SceneParse):
        self.planted = parse
        self.calls = 0

    def parse(self, rgb: np.ndarray) -> SceneParse:
        self.calls += 1
        return self.planted.resized((rgb.shape[1], rgb.shape[0]))


def test_the_engine_stages_with_its_scene_parser_and_keeps_analyses_apart(tmp_path, monkeypatch):
    scene, mask, alpha, plain = _bed_room()
    chair = _chair_under(plain.alignment.box, mask)
    parser = PlantedParser(_parse_for(mask, chair))
    monkeypatch.setitem(parse_module.PARSERS, "planted", lambda runtime: parser)
    save_image(tmp_path / "room.png", scene)
    save_mask(tmp_path / "room-mask.png", mask)
    product, product_alpha = product_shot(120, 60)
    save_image(tmp_path / "chair.png", product)
    save_mask(tmp_path / "chair-mask.png", product_alpha >= 0.5)

    def stage(name: str):
        engine = StagingEngine(
            models_dir=str(tmp_path / "models"), cache_dir=tmp_path / "cache", scene_parser=name
        )
        return engine.stage_in_scene(
            tmp_path / "chair.png", tmp_path / "room.png", mask=tmp_path / "chair-mask.png",
            scene_mask=tmp_path / "room-mask.png", product_type="Chair", product_size="45 cm",
        )  # fmt: skip

    parsed = stage("planted")
    assert parser.calls == 1
    assert parsed.scores["fit_category"] == 0.5  # a chair for a bed
    x0, y0, x1, y1 = chair
    assert not (parsed.alpha[y0:y1, x0:x1] >= 0.5).any()  # beside the chair, not on it
    # Without a parser the same cache gives the segmenter-only analysis, not the parsed one.
    plain_result = stage("none")
    assert "fit_category" not in plain_result.scores
    assert (plain_result.alpha[y0:y1, x0:x1] >= 0.5).any()
    stage("planted")
    assert parser.calls == 1  # the parsed analysis came from the disk cache
    # Clicks analyse the scene again, but parse it once.
    engine = StagingEngine(
        models_dir=str(tmp_path / "models"), cache_dir=tmp_path / "cache", scene_parser="planted"
    )
    for point in ((30, 200), ((x0 + x1) / 2, (y0 + y1) / 2)):
        clicked = engine.stage_in_scene(
            tmp_path / "chair.png", tmp_path / "room.png", mask=tmp_path / "chair-mask.png",
            scene_mask=tmp_path / "room-mask.png", object_at=point,
        )  # fmt: skip
    assert parser.calls == 2
    assert clicked.source["object_box"] == list(chair)  # the chair only the parser names


class Failing(SceneParser):
    name = "failing"

    def parse(self, rgb: np.ndarray) -> SceneParse:
        raise RuntimeError("out of memory")


def test_a_parser_failing_on_a_scene_is_left_out_under_auto_and_an_error_when_named(
    tmp_path, monkeypatch
):
    scene, mask, _, _ = _bed_room()
    save_image(tmp_path / "room.png", scene)
    save_mask(tmp_path / "room-mask.png", mask)
    monkeypatch.setitem(parse_module.PARSERS, "failing", lambda runtime: Failing())
    named = StagingEngine(
        models_dir=str(tmp_path), cache_dir=tmp_path / "c1", scene_parser="failing"
    )
    with pytest.raises(StagingError, match="scene parser failed.*out of memory"):
        named._analysed_scene(tmp_path / "room.png", tmp_path / "room-mask.png", 320, None, None)
    auto = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "c2")
    monkeypatch.setattr(auto, "scene_parser_name", lambda: "failing")
    with pytest.warns(UserWarning, match="out of memory"):
        analysis, problem = auto._analysed_scene(
            tmp_path / "room.png", tmp_path / "room-mask.png", 320, None, None
        )
    assert problem is None and analysis.category is None  # staged without the parser
    assert not list((tmp_path / "c2" / "scenes").glob("*.npz"))  # not kept under its key


def test_a_click_on_a_scene_the_segmenter_found_empty(tmp_path, monkeypatch):
    scene, mask, _, plain = _bed_room()
    chair = _chair_under(plain.alignment.box, mask)
    monkeypatch.setitem(
        parse_module.PARSERS, "planted", lambda runtime: PlantedParser(_parse_for(mask, chair))
    )
    save_image(tmp_path / "room.png", scene)
    save_mask(tmp_path / "empty.png", np.zeros_like(mask))
    product, product_alpha = product_shot(120, 60)
    for parser, point, expected in (
        ("planted", ((chair[0] + chair[2]) / 2, (chair[1] + chair[3]) / 2), list(chair)),
        ("planted", (5, 5), None),  # the wall: nothing there
        ("none", (160, 200), None),
    ):
        engine = StagingEngine(
            models_dir=str(tmp_path), cache_dir=tmp_path / "cache", scene_parser=parser
        )

        def stage(point=point, engine=engine):
            return engine.stage_in_scene(
                product, tmp_path / "room.png", mask=product_alpha >= 0.5,
                scene_mask=tmp_path / "empty.png", object_at=point,
            )  # fmt: skip

        if expected is None:
            with pytest.raises(StagingError, match="no object found"):
                stage()
        else:
            assert stage().source["object_box"] == expected


def test_auto_skips_parsers_it_cannot_run(tmp_path, monkeypatch):
    import importlib.util

    # A plugin parser without a registry entry is never "on disk" for auto.
    monkeypatch.setitem(parse_module.PARSERS, "plugin", lambda runtime: RedIsABed())
    engine = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "cache")
    assert engine.scene_parser_name() is None
    # With the weights there but transformers not installed, auto takes none.
    folder = tmp_path / "segformer-ade"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json", "pytorch_model.bin"):
        (folder / name).write_text("{}")
    assert engine.scene_parser_name() == "segformer-ade"
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "transformers" else find_spec(name, *a),
    )
    assert engine.scene_parser_name() is None


class RedIsABed(SceneParser):
    """Names the synthetic rooms' red objects ``bed``, the rest wall and floor."""

    name = "red-is-a-bed"

    def parse(self, rgb: np.ndarray) -> SceneParse:
        h = rgb.shape[0]
        labels = np.full(rgb.shape[:2], WALL, np.int32)
        labels[int(h * 0.62) :] = FLOOR
        pixels = rgb.astype(int)
        labels[(pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)] = BED
        return SceneParse(labels, NAMES)


def test_copy_paste_takes_each_scenes_kind_from_the_parser(tmp_path, monkeypatch):
    monkeypatch.setitem(parse_module.PARSERS, "red-is-a-bed", lambda runtime: RedIsABed())
    catalog_of_rooms(tmp_path, [(130, 70, 90), (60, 90, 120)], seed=50)
    engine = StagingEngine(
        models_dir=str(tmp_path / "models"), cache_dir=tmp_path / "cache",
        scene_parser="red-is-a-bed",
    )  # fmt: skip
    index = tmp_path / "index"
    engine.update_index(index, tmp_path / "images", csv=tmp_path / "catalog.csv", progress=False)
    product, _ = product_shot()
    for kind, agreement in (("Chair", 0.5), ("Bed, double", 1.0)):
        results = engine.stage_copy_paste(product, k=2, index=index, product_type=kind)
        assert [r.scores["fit_category"] for r in results] == [agreement, agreement]


def test_auto_uses_no_parser_without_weights_and_a_named_one_says_what_to_pull(tmp_path):
    engine = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "cache", auto_pull=False)
    assert engine.scene_parser_name() is None and engine.scene_parser() is None
    assert "staging models pull upernet-convnext-tiny-ade" in engine.scene_parser_status()
    off = StagingEngine(models_dir=str(tmp_path), scene_parser="none")
    assert off.scene_parser_status() == "Scene parser: off (scene_parser=none)."
    typo = StagingEngine(models_dir=str(tmp_path), scene_parser="segformer")
    assert "`segformer` is unknown" in typo.scene_parser_status()
    named = StagingEngine(
        models_dir=str(tmp_path), cache_dir=tmp_path / "cache", scene_parser="segformer-ade",
        offline=True,
    )  # fmt: skip
    with pytest.raises(ModelNotAvailableError, match="staging models pull segformer-ade"):
        named.scene_parser()
    assert "not on disk: `staging models pull segformer-ade`" in named.scene_parser_status()


# -- the transformers backends ----------------------------------------------------------------
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def tiny_checkpoint(folder, architecture: str, names=NAMES, side=64):
    """A SegFormer or UperNet-ConvNeXt of a few 10k parameters with ``names`` as its classes,
    saved as the registry's files (config.json, preprocessor_config.json, pytorch_model.bin)."""
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    torch.manual_seed(0)
    if architecture == "segformer":
        config = transformers.SegformerConfig(
            depths=[1, 1, 1, 1], hidden_sizes=[8, 8, 16, 16], num_attention_heads=[1, 1, 1, 1],
            decoder_hidden_size=16, **labels,
        )  # fmt: skip
        model = transformers.SegformerForSemanticSegmentation(config)
    else:
        backbone = transformers.ConvNextConfig(
            hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1],
            out_features=["stage1", "stage2", "stage3", "stage4"],
        )  # fmt: skip
        config = transformers.UperNetConfig(
            backbone_config=backbone, hidden_size=16, auxiliary_in_channels=16,
            auxiliary_channels=8, **labels,
        )  # fmt: skip
        model = transformers.UperNetForSemanticSegmentation(config)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    processor = {
        "image_processor_type": "SegformerImageProcessor",
        "size": {"height": side, "width": side},
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return model


ARCHITECTURES = [("segformer-ade", "segformer"), ("upernet-convnext-tiny-ade", "upernet")]


@pytest.mark.parametrize(("name", "architecture"), ARCHITECTURES)
def test_a_checkpoint_loads_under_auto_and_parses_as_transformers_does(
    tmp_path, name, architecture
):
    model = tiny_checkpoint(tmp_path / name, architecture)
    engine = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "cache")
    assert engine.scene_parser_name() == name
    parser = engine.scene_parser()
    assert parser.name == name
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (48, 40, 3), np.uint8)  # enlarged to the net's 64 px
    blocks = rng.integers(0, 256, (6, 8, 3), np.uint8).repeat(25, axis=0).repeat(25, axis=1)
    processor = transformers.SegformerImageProcessorPil.from_pretrained(str(tmp_path / name))
    for rgb in (noise, blocks):  # blocks: 150x200, shrunk (the low-pass matters)
        parse = parser.parse(rgb)
        assert parse.labels.shape == rgb.shape[:2] and parse.names == NAMES
        # The reference: the checkpoint's own image processor, forward, and transformers'
        # post-processing to the image's size.
        inputs = processor(images=[rgb], return_tensors="pt", input_data_format="channels_last")
        with torch.inference_mode():
            outputs = model(**inputs)
        size = [rgb.shape[:2]]
        reference = processor.post_process_semantic_segmentation(outputs, target_sizes=size)[0]
        assert len(np.unique(reference)) >= 2  # a test of labels, not of one class
        # Equal but at some label edges: the logits are enlarged to the net's input size at
        # most, then the labels to the image's.
        assert (parse.labels == reference.numpy()).mean() > 0.95


def test_analyses_by_another_checkpoint_under_the_same_name_are_not_reused(tmp_path, monkeypatch):
    from staging.segment.semantic import SemanticParser

    tiny_checkpoint(tmp_path / "models" / "segformer-ade", "segformer")
    scene, mask, _, _ = _bed_room()
    save_image(tmp_path / "room.png", scene)
    save_mask(tmp_path / "room-mask.png", mask)
    calls = []
    parse = SemanticParser.parse

    def counted(self, rgb):
        calls.append(1)
        return parse(self, rgb)

    def analyse():
        engine = StagingEngine(models_dir=str(tmp_path / "models"), cache_dir=tmp_path / "cache")
        engine._analysed_scene(tmp_path / "room.png", tmp_path / "room-mask.png", 320, None, None)

    monkeypatch.setattr(SemanticParser, "parse", counted)
    analyse()
    analyse()
    assert len(calls) == 1  # the second engine read the first's analysis
    tiny_checkpoint(tmp_path / "models" / "segformer-ade", "segformer", names=NAMES[::-1])
    analyse()
    assert len(calls) == 2  # other classes, another checkpoint: analysed again


def test_auto_prefers_the_better_parser_when_both_are_on_disk(tmp_path):
    for name, architecture in ARCHITECTURES:
        tiny_checkpoint(tmp_path / name, architecture)
    engine = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "cache")
    assert engine.scene_parser_name() == "upernet-convnext-tiny-ade"
    assert "`upernet-convnext-tiny-ade`" in engine.scene_parser_status()
    chosen = StagingEngine(
        models_dir=str(tmp_path), cache_dir=tmp_path / "cache", scene_parser="segformer-ade"
    )
    assert chosen.scene_parser().name == "segformer-ade"


def test_a_damaged_checkpoint_is_left_out_under_auto_and_an_error_when_named(tmp_path):
    tiny_checkpoint(tmp_path / "segformer-ade", "segformer")
    weights = torch.load(tmp_path / "segformer-ade" / "pytorch_model.bin")
    del weights["decode_head.classifier.weight"]
    torch.save(weights, tmp_path / "segformer-ade" / "pytorch_model.bin")
    named = StagingEngine(
        models_dir=str(tmp_path), cache_dir=tmp_path / "cache", scene_parser="segformer-ade"
    )
    with pytest.raises(StagingError, match="pull segformer-ade --force"):
        named.scene_parser()
    auto = StagingEngine(models_dir=str(tmp_path), cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning, match="(?s)without a scene parser.*pull segformer-ade --force"):
        assert auto.scene_parser() is None
    assert auto.scene_parser_name() is None  # said once, not tried for every scene
    assert "does not load" in auto.scene_parser_status()
    (tmp_path / "segformer-ade" / "preprocessor_config.json").write_text("{not json")
    tiny_checkpoint(tmp_path / "other" / "segformer-ade", "segformer")
    (tmp_path / "other" / "segformer-ade" / "preprocessor_config.json").write_text("{not json")
    broken = StagingEngine(
        models_dir=str(tmp_path / "other"), cache_dir=tmp_path / "cache",
        scene_parser="segformer-ade",
    )  # fmt: skip
    with pytest.raises(StagingError, match="pull segformer-ade --force"):
        broken.scene_parser()


def test_preprocessing_follows_the_processor_file(tmp_path):
    from staging.segment.semantic import Preprocessing

    assert Preprocessing.of(tmp_path) == Preprocessing()  # no file: 512, /255, ImageNet
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"size": [384, 640], "do_rescale": False, "do_normalize": False})
    )
    assert Preprocessing.of(tmp_path) == Preprocessing((384, 640), 1.0, (0, 0, 0), (1, 1, 1))
