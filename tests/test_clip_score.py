"""``staging eval clip-score`` on a tiny CLIP model built here.

The test builds a real ``CLIPModel`` (both towers) from a small ``CLIPConfig`` with random
weights, a character-level CLIP tokenizer and a ``CLIPImageProcessor``, saves them with
``save_pretrained`` into a folder named like the registry entry, and loads them through the same
code users run (``ModelStore`` -> ``from_pretrained(..., local_files_only=True)``).

With random weights, "a matching image/prompt pair scores higher" is not meaningful, so these
tests check what is: the numbers equal the reference ``CLIPModel.forward`` similarity
(``logits_per_image / logit_scale``), lie in range, are deterministic, and the report's pairing,
``top1_match`` and truncation counting are right. Skipped when torch/transformers are absent.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import save_char_clip_tokenizer, tiny_clip_model
from typer.testing import CliRunner

from staging import StagingEngine
from staging.cli import app
from staging.errors import ModelNotAvailableError, StagingError
from staging.evaluate.clip_score import (
    MODEL,
    clip_score,
    evaluate_clip_score,
    load_clip_scorer,
    pair_prompts,
)
from staging.io import save_image
from staging.models import ModelStore

runner = CliRunner()
MAX_TOKENS = 64


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = tiny_clip_model(MAX_TOKENS)
    root = tmp_path_factory.mktemp("clip-models")
    folder = root / MODEL
    model.save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    save_char_clip_tokenizer(folder)
    return root, model


@pytest.fixture(scope="module")
def scorer(clip_root):
    root, _ = clip_root
    return load_clip_scorer(ModelStore([root]))


def _images(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = np.zeros((48, 40, 3), np.uint8)
        img[:] = (40 * i, 255 - 50 * i, 90)
        img[10:30, 8:30] = rng.integers(0, 256, (20, 22, 3), dtype=np.uint8)
        out.append(img)
    return out


PROMPTS = [
    "a chair in a bright living room",
    "a sofa in an industrial loft",
    "a lamp on a bedside table",
]


def test_similarity_equals_the_reference_clip_forward(scorer, clip_root):
    import torch

    _, model = clip_root
    images = _images(3)
    sims = scorer.similarity(images, PROMPTS)
    assert sims.shape == (3, 3) and sims.dtype == np.float32
    assert np.all(sims >= -1.0001) and np.all(sims <= 1.0001)
    pixels = scorer.processor(
        images=images, return_tensors="pt", input_data_format="channels_last"
    )["pixel_values"]
    tokens = scorer.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            pixel_values=pixels,
        )
        reference = (out.logits_per_image / model.logit_scale.exp()).numpy()
    np.testing.assert_allclose(sims, reference, atol=1e-5)
    # deterministic, and score() is the diagonal of the similarity matrix
    np.testing.assert_allclose(scorer.similarity(images, PROMPTS), sims, atol=1e-6)
    np.testing.assert_allclose(scorer.score(images, PROMPTS), np.diag(sims), atol=1e-6)
    # the images differ, so the model must tell them apart
    assert np.ptp(sims[:, 0]) > 1e-4
    scores = clip_score(sims)
    assert np.all((scores >= 0) & (scores <= 100))
    assert clip_score(-0.3) == 0.0 and clip_score(0.31) == pytest.approx(31.0)


def test_long_prompts_are_truncated_and_counted(scorer):
    scorer.truncated = 0
    long = "a chair " * 40
    emb = scorer.text_embeddings([long, long + "in a loft"])
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)  # the tail beyond the limit is cut
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert scorer.truncated == 2 and scorer.max_tokens == MAX_TOKENS
    with pytest.raises(StagingError, match="3 images but 2 prompts"):
        scorer.score(_images(3), PROMPTS[:2])


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "generated"
    for i, img in enumerate(_images(3)):
        save_image(folder / f"img{i}.png", img)
    return folder


def test_evaluate_with_a_prompt_file(clip_root, scorer, image_folder, tmp_path):
    root, _ = clip_root
    engine = StagingEngine(models_dir=str(root))
    mapping = {f"img{i}": p for i, p in enumerate(PROMPTS)}
    (tmp_path / "p.json").write_text(json.dumps(mapping))
    report = evaluate_clip_score(engine, image_folder, prompts=tmp_path / "p.json")
    assert report["images"] == 3 and report["prompts"] == 3
    files = sorted(image_folder.iterdir())
    expected = scorer.score([engine.load_image(f) for f in files], PROMPTS)
    got = [row["cosine"] for row in report["per_image"]]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert report["mean_cosine"] == pytest.approx(float(np.mean(expected)), abs=1e-5)
    assert -1 <= report["min_cosine"] <= report["max_cosine"] <= 1
    assert 0 <= report["clip_score"] <= 100
    sims = scorer.similarity([engine.load_image(f) for f in files], PROMPTS)
    assert report["top1_match"] == pytest.approx(float((sims.argmax(1) == np.arange(3)).mean()))
    # CSV and one-line-per-image text pair the same way
    (tmp_path / "p.csv").write_text(
        "image,prompt\n" + "".join(f"img{i}.png,{p}\n" for i, p in enumerate(PROMPTS))
    )
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    for name in ("p.csv", "p.txt"):
        assert pair_prompts(files, image_folder, tmp_path / name) == PROMPTS
    one = evaluate_clip_score(engine, image_folder, prompt=PROMPTS[0], scorer=scorer)
    assert one["prompts"] == 1 and "top1_match" not in one


def test_prompt_pairing_errors(image_folder, tmp_path):
    files = sorted(image_folder.iterdir())
    (tmp_path / "two.txt").write_text("a\nb\n")
    with pytest.raises(StagingError, match="2 prompts for 3 images"):
        pair_prompts(files, image_folder, tmp_path / "two.txt")
    (tmp_path / "m.json").write_text(json.dumps({"img0": "x"}))
    with pytest.raises(StagingError, match="no prompt for 2 image"):
        pair_prompts(files, image_folder, tmp_path / "m.json")
    engine = StagingEngine()
    with pytest.raises(StagingError, match="exactly one of --prompt"):
        evaluate_clip_score(engine, image_folder)


def test_cli_clip_score(clip_root, image_folder):
    root, _ = clip_root
    result = runner.invoke(
        app,
        ["--models-dir", str(root), "eval", "clip-score", "--images", str(image_folder),
         "--prompt", "a chair in a loft", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 3 and len(report["per_image"]) == 3
    text = runner.invoke(
        app,
        ["--models-dir", str(root), "eval", "clip-score", "--images", str(image_folder),
         "--prompt", "a chair"],
    )  # fmt: skip
    assert text.exit_code == 0 and "mean_cosine" in text.output


def test_missing_model_names_the_pull_command(tmp_path, image_folder):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    with pytest.raises(ModelNotAvailableError, match=f"staging models pull {MODEL}"):
        load_clip_scorer(ModelStore([tmp_path / "empty"]))
    result = runner.invoke(
        app,
        ["--models-dir", str(tmp_path / "empty"), "eval", "clip-score", "--images",
         str(image_folder), "--prompt", "x"],
    )  # fmt: skip
    assert isinstance(result.exception, StagingError)
    assert f"staging models pull {MODEL}" in str(result.exception)


def test_missing_tokenizer_or_text_tower(clip_root, tmp_path):
    root, _ = clip_root
    no_tok = tmp_path / "no-tok"
    shutil.copytree(root / MODEL, no_tok / MODEL)
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (no_tok / MODEL / name).unlink(missing_ok=True)
    # The registry lists the tokenizer, so a folder without it is "not pulled" yet.
    with pytest.raises(ModelNotAvailableError, match=f"staging models pull {MODEL}"):
        load_clip_scorer(ModelStore([no_tok]))
    # an image-only checkpoint (what the `clip` embedder needs) cannot score text
    from safetensors.torch import load_file, save_file

    vision_only = tmp_path / "vision"
    shutil.copytree(root / MODEL, vision_only / MODEL)
    weights = vision_only / MODEL / "model.safetensors"
    state = {k: v for k, v in load_file(weights).items() if not k.startswith("text_")}
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(StagingError, match="(?s)lacks .* weights.*both towers.*--force"):
        load_clip_scorer(ModelStore([vision_only]))
