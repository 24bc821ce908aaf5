"""Training on the catalog (issue 18): free-form holes and the weighted boundary loss's map,
``staging dataset`` (records, resume, failures), and EdgeConnect trained for a few steps on
CPU (the loss goes down, checkpoints save and resume, the model loads as an inpainter)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from staging.io import load_image, save_image
from staging.train.dataset import METADATA, Record, build_dataset, read_metadata
from staging.train.masks import boundary_weights, free_form_mask


# -- holes and the weight map ----------------------------------------------------------------
def test_free_form_holes_are_strokes_of_a_sensible_size_and_repeat_with_the_seed():
    holes = [free_form_mask(256, 256, np.random.default_rng(seed)) for seed in range(40)]
    shares = np.array([h.mean() for h in holes])
    assert holes[0].dtype == bool and holes[0].shape == (256, 256)
    assert shares.min() > 0.01 and np.median(shares) < 0.5  # strokes, not the whole frame
    assert np.array_equal(holes[3], free_form_mask(256, 256, np.random.default_rng(3)))
    assert not np.array_equal(holes[3], holes[4])
    wide = free_form_mask(512, 1024, np.random.default_rng(0))  # scaled to the image
    assert wide.shape == (512, 1024) and wide.any()


def test_the_boundary_weights_are_lambda_boundary_on_the_band_and_lambda_elsewhere():
    hole = np.zeros((64, 64), bool)
    hole[20:40, 16:48] = True
    weights = boundary_weights(hole, (0.9, 0.1), radius=3)
    assert weights.dtype == np.float32
    assert set(np.unique(weights)) == {np.float32(0.9), np.float32(0.1)}
    # the band: within 3 px of the edge, inside and outside (Euclidean distance to the edge)
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
    band = (hole & (inside <= 3)) | (~hole & (outside <= 3))
    core = (hole & (inside > 4.5)) | (~hole & (outside > 4.5))
    assert (weights[band & ~core] == np.float32(0.9)).all()
    assert (weights[core] == np.float32(0.1)).all()
    assert weights[30, 32] == np.float32(0.1) and weights[20, 32] == np.float32(0.9)
    assert (boundary_weights(hole, (0.5, 0.25)) != 0).all()


# -- staging dataset ---------------------------------------------------------------------------
def _room(seed: int, size=(48, 64), noise: float = 0.0) -> np.ndarray:
    """A little room: a wall gradient, a floor, a blue product (and sensor noise)."""
    h, w = size
    rng = np.random.default_rng(seed)
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = np.linspace(90, 210, w)[None, :, None].astype(np.uint8)
    rgb[int(h * 0.65) :] = (130, 95, 60) + rng.integers(-8, 8, (3,))
    y, x = int(rng.integers(8, 16)), int(rng.integers(10, w - 30))
    rgb[y : int(h * 0.8), x : x + 18] = (30, 60, 170)
    return np.clip(rgb + rng.normal(0, noise, rgb.shape), 0, 255).astype(np.uint8)


def _blue(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = (rgb[..., 2] > 130) & (rgb[..., 0] < 90)
    return mask, mask.astype(np.float32)


def _catalog(folder: Path, count: int) -> list[Record]:
    return [
        Record(f"room-{i}", save_image(folder / f"room-{i}.png", _room(i)), f"room {i}")
        for i in range(count)
    ]


def test_dataset_writes_every_part_of_a_record_and_resumes_without_duplicates(tmp_path):
    records = _catalog(tmp_path / "catalog", 4)
    broken = tmp_path / "catalog" / "broken.png"
    broken.write_bytes(b"not a png")
    records.append(Record("broken", broken))
    out = tmp_path / "data"
    report = build_dataset(records, out, load_image, _blue, holes=2)
    assert (report.added, report.skipped, [f[0] for f in report.failed]) == (4, 0, ["broken"])
    rows = read_metadata(out)
    assert [r["id"] for r in rows] == ["room-0", "room-1", "room-2", "room-3"]
    row = rows[1]
    target, product = load_image(row["file_name"]), load_image(row["input"])
    mask = load_image(row["mask"])[..., 0] > 127
    assert np.array_equal(target, _room(1)) and np.array_equal(mask, _blue(_room(1))[0])
    assert (product[mask] == target[mask]).all() and (product[~mask] == 255).all()  # on white
    assert row["text"] == "room 1" and len(row["holes"]) == 2
    holes = [load_image(h)[..., 0] > 127 for h in row["holes"]]
    assert all(h.any() and h.shape == mask.shape for h in holes)

    # A kill mid-line leaves a torn last line: it is dropped, that record is written again.
    metadata = out / METADATA
    lines = metadata.read_text().splitlines(keepends=True)
    metadata.write_text("".join(lines[:2]) + lines[2][:25])
    again = build_dataset(records[:4], out, load_image, _blue, holes=2)
    assert (again.added, again.skipped) == (2, 2)
    assert [r["id"] for r in read_metadata(out)] == ["room-0", "room-1", "room-2", "room-3"]
    assert load_image(rows[2]["holes"][0]).tobytes() == (  # the same holes: seeded by the id
        load_image(read_metadata(out)[2]["holes"][0]).tobytes()
    )


def test_engine_dataset_skips_unstaged_shots_and_takes_captions_from_a_column(tmp_path):
    from staging import StagingEngine
    from tests.helpers.rooms import product_shot

    folder = tmp_path / "catalog"
    shot, _ = product_shot()
    rows = ["id,image,caption"]
    for i in range(2):
        save_image(folder / f"r{i}.png", _room(i, (96, 128), noise=12))
        rows.append(f"r{i},r{i}.png,a blue cabinet in room {i}")
    save_image(folder / "shot.png", shot)
    rows.append("shot,shot.png,a product on white")
    (folder / "catalog.csv").write_text("\n".join(rows) + "\n")
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    engine.segment = lambda rgb: SimpleNamespace(mask=_blue(rgb)[0], alpha=_blue(rgb)[1])
    report = engine.build_dataset(folder / "catalog.csv", tmp_path / "data", holes=1,
                                  caption_column="caption")  # fmt: skip
    assert report.added == 2 and [f[0] for f in report.failed] == ["shot"]
    assert "not a staged image" in report.failed[0][1]
    texts = [r["text"] for r in read_metadata(tmp_path / "data")]
    assert texts == ["a blue cabinet in room 0", "a blue cabinet in room 1"]


# -- EdgeConnect -------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


def _tiny(**overrides):
    from staging.train.edgeconnect import InpaintTraining

    options = dict(size=32, width=8, blocks=1, batch=4, steps=40, validation=2,
                   sample_every=20, save_every=20, lr=2e-3)  # fmt: skip
    return InpaintTraining(**(options | overrides))


@pytest.fixture(scope="module")
def rooms_dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rooms")
    build_dataset(_catalog(folder / "catalog", 8), folder / "data", load_image, _blue, holes=3)
    return folder / "data"


def test_edgeconnect_trains_saves_resumes_and_loads_as_an_inpainter(rooms_dataset, tmp_path):
    from staging import StagingEngine
    from staging.train.edgeconnect import train_inpaint

    torch.manual_seed(0)
    model = tmp_path / "model"
    first = train_inpaint(rooms_dataset, model, _tiny(steps=60), progress=False)
    history = first["history"]["l1"]  # measured: ~0.6 over the first 10 steps, ~0.25 at 50-60
    assert first["steps"] == 60 and np.mean(history[-10:]) < 0.6 * np.mean(history[:10])
    config = json.loads((model / "config.json").read_text())
    assert config["format"] == "staging-edgeconnect" and config["wbl"] == [0.9, 0.1]
    assert config["steps"] == 60 and (model / "samples" / "step-0000040.png").is_file()
    assert set(first["validation"]) == {"hole_l1", "boundary_weighted_l1"}

    resumed = train_inpaint(rooms_dataset, model, _tiny(steps=65), progress=False)
    assert resumed["steps"] == 65 and len(resumed["history"]["l1"]) == 5  # 5 more, not 65
    assert resumed["history"]["l1"][0] < np.mean(history[:10])  # the trained weights, not new
    with pytest.raises(ValueError, match="width 8"):
        train_inpaint(rooms_dataset, model, _tiny(steps=70, width=16), progress=False)

    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    room = _room(5, (96, 128))
    hole = np.zeros(room.shape[:2], bool)
    hole[30:60, 40:80] = True
    filled = engine.inpaint(room, hole, backend=f"edgeconnect:{model}")
    assert np.array_equal(filled[~hole], room[~hole])  # exact outside the hole
    assert not np.array_equal(filled[hole], room[hole]) and filled[hole].std() > 0


def test_wbl_off_trains_without_the_boundary_term(rooms_dataset, tmp_path):
    from staging.train.edgeconnect import train_inpaint

    off = train_inpaint(rooms_dataset, tmp_path / "off", _tiny(steps=2, wbl=None), progress=False)
    on = train_inpaint(rooms_dataset, tmp_path / "on", _tiny(steps=2), progress=False)
    assert "wbl" not in off["losses"] and on["losses"]["wbl"] > 0
    assert json.loads((tmp_path / "off" / "config.json").read_text())["wbl"] is None


def test_a_missing_edgeconnect_model_says_how_to_train_one(tmp_path):
    from staging import StagingEngine
    from staging.errors import ModelNotAvailableError, StagingError

    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    room = _room(0)
    with pytest.raises(ModelNotAvailableError, match="staging train inpaint"):
        engine.inpaint(room, _blue(room)[0], backend="edgeconnect")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StagingError, match="not an EdgeConnect model folder"):
        engine.inpaint(room, _blue(room)[0], backend=f"edgeconnect:{tmp_path / 'empty'}")


def test_cli_dataset_then_train_inpaint(tmp_path):
    """The two commands end to end on product shots (weights-free masks: no model here)."""
    from typer.testing import CliRunner

    from staging.cli import app
    from tests.helpers.rooms import product_shot

    for i, (h, w) in enumerate([(120, 60), (60, 120), (90, 90)]):
        save_image(tmp_path / "catalog" / f"shot{i}.png", product_shot(h, w)[0])
    runner = CliRunner()
    made = runner.invoke(app, ["dataset", str(tmp_path / "catalog"), "--out",
                               str(tmp_path / "data"), "--all", "--holes", "1",
                               "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["added"] == 3
    trained = runner.invoke(app, ["train", "inpaint", str(tmp_path / "data"), "--out",
                                  str(tmp_path / "model"), "--size", "32", "--width", "8",
                                  "--blocks", "1", "--batch", "2", "--steps", "3",
                                  "--validation", "1", "--wbl", "off", "--json"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.output)["steps"] == 3
    assert json.loads((tmp_path / "model" / "config.json").read_text())["wbl"] is None
    # --seed: the same seed trains the same weights, another seed others (runs to compare).
    weights = {}
    for name, seed in (("same", "0"), ("other", "1")):
        again = runner.invoke(app, ["train", "inpaint", str(tmp_path / "data"), "--out",
                                    str(tmp_path / name), "--size", "32", "--width", "8",
                                    "--blocks", "1", "--batch", "2", "--steps", "3",
                                    "--validation", "1", "--wbl", "off", "--seed", seed,
                                    "--json"])  # fmt: skip
        assert again.exit_code == 0, again.output
        weights[name] = (tmp_path / name / "inpaint.safetensors").read_bytes()
    assert weights["same"] == (tmp_path / "model" / "inpaint.safetensors").read_bytes()
    assert weights["other"] != weights["same"]
    clash = runner.invoke(app, ["train", "inpaint", str(tmp_path / "data"), "--out",
                                str(tmp_path / "other"), "--size", "32", "--width", "8",
                                "--blocks", "1", "--batch", "2", "--steps", "4",
                                "--validation", "1", "--wbl", "off", "--seed", "0"])  # fmt: skip
    assert "seed 1" in str(clash.exception)  # resuming under another seed is neither run
    bad = runner.invoke(app, ["train", "inpaint", str(tmp_path / "data"), "--out",
                              str(tmp_path / "m2"), "--wbl", "0.9"])  # fmt: skip
    assert bad.exit_code != 0 and "two numbers" in bad.output
    missing = runner.invoke(app, ["train", "inpaint", str(tmp_path / "nothing"), "--out",
                                  str(tmp_path / "m3")])  # fmt: skip
    assert "run staging dataset" in str(missing.exception)  # main() prints it as one line
    odd = runner.invoke(app, ["train", "pix2pix", str(tmp_path / "data"), "--out",
                              str(tmp_path / "m4"), "--size", "300"])  # fmt: skip
    assert odd.exit_code != 0 and "multiple of 256" in odd.output


# -- pix2pix -----------------------------------------------------------------------------------
def test_pix2pix_trains_resumes_and_stages_through_the_backend(tmp_path):
    from staging import StagingEngine
    from staging.train.pix2pix import Pix2PixTraining, train_pix2pix

    rooms = [Record(f"r{i}", save_image(tmp_path / f"r{i}.png", _room(i, (256, 320))), "")
             for i in range(5)]  # fmt: skip
    build_dataset(rooms, tmp_path / "data", load_image, _blue, holes=1)
    options = dict(size=256, width=4, batch=2, validation=1, sample_every=20, save_every=20,
                   lr=2e-3)  # fmt: skip
    torch.manual_seed(0)
    first = train_pix2pix(tmp_path / "data", tmp_path / "model",
                          Pix2PixTraining(steps=40, **options), progress=False)  # fmt: skip
    history = first["history"]["l1"]
    # measured: 0.29 over the first 10 steps, 0.18 over the last 10
    assert first["steps"] == 40 and np.mean(history[-10:]) < 0.75 * np.mean(history[:10])
    assert (tmp_path / "model" / "samples" / "step-0000020.png").is_file()
    again = train_pix2pix(tmp_path / "data", tmp_path / "model",
                          Pix2PixTraining(steps=42, **options), progress=False)  # fmt: skip
    assert again["steps"] == 42 and len(again["history"]["l1"]) == 2
    assert again["history"]["l1"][0] < np.mean(history[:10])  # resumed, not started over

    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    room = _room(7, (256, 320))
    mask, _ = _blue(room)
    staged = engine.stage_vanilla(room, mask=mask, placement="300x250",
                                  backend=f"pix2pix:{tmp_path / 'model'}")  # fmt: skip
    image = staged[0].image
    assert image.shape == (250, 300, 3) and staged[0].source["backend"] == "pix2pix"
    assert image[:40].std() > 1  # a painted background, not the white input


def _tiny_blip(folder: Path) -> None:
    """A BLIP captioner with random weights and a 16-word vocabulary, saved with the
    registry's file names (``blip-captioning``)."""
    transformers = pytest.importorskip("transformers")
    folder.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "chair", "in", "room", "red",
             "blue", "table", "the", "living", "with", "[DEC]"]  # fmt: skip
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = transformers.BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    layers = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    config = transformers.BlipConfig(
        vision_config=dict(layers, image_size=32, patch_size=8),
        text_config=dict(layers, vocab_size=len(tok), encoder_hidden_size=16,
                         max_position_embeddings=32, bos_token_id=tok.bos_token_id,
                         pad_token_id=tok.pad_token_id, sep_token_id=tok.sep_token_id),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.BlipForConditionalGeneration(config).save_pretrained(folder)
    images = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    transformers.BlipProcessor(image_processor=images, tokenizer=tok).save_pretrained(folder)
    images.save_pretrained(folder)  # preprocessor_config.json, as the hub repository has it
    if not (folder / "special_tokens_map.json").is_file():
        (folder / "special_tokens_map.json").write_text(json.dumps({"bos_token": "[DEC]"}))


def test_dataset_captions_with_blip_when_it_is_on_disk(tmp_path):
    from staging import StagingEngine
    from staging.models import REGISTRY

    _tiny_blip(tmp_path / "models" / "blip-captioning")
    assert all((tmp_path / "models" / "blip-captioning" / f).is_file()
               for f in REGISTRY["blip-captioning"].files)  # fmt: skip
    folder = tmp_path / "catalog"
    for i in range(2):
        save_image(folder / f"r{i}.png", _room(i, (96, 128), noise=12))
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "models"))
    engine.segment = lambda rgb: SimpleNamespace(mask=_blue(rgb)[0], alpha=_blue(rgb)[1])
    engine.build_dataset(folder, tmp_path / "blip", holes=1)
    words = {"a", "chair", "in", "room", "red", "blue", "table", "the", "living", "with"}
    texts = [r["text"] for r in read_metadata(tmp_path / "blip")]
    assert all(t and set(t.split()) <= words for t in texts)  # the model's own vocabulary
    engine.build_dataset(folder, tmp_path / "plain", holes=1, captions="catalog")
    assert [r["text"] for r in read_metadata(tmp_path / "plain")] == ["", ""]
    bare = StagingEngine(device="cpu", models_dir=str(tmp_path / "no-models"))
    with pytest.raises(Exception, match="staging models pull blip-captioning"):
        bare.build_dataset(folder, tmp_path / "none", captions="blip")
