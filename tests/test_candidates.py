"""engine.stage_candidates (every mode for one product, for the one-screen grid) and the
designer's words for a result (staging.captions)."""

from __future__ import annotations

import json
import os

import pytest

from staging import Candidates, StagingEngine, StagingError
from staging.captions import explain, label, product_words, public_details
from staging.catalog import CatalogIndex
from staging.io import save_image
from tests.helpers.rooms import catalog_of_rooms, product_shot


@pytest.fixture(scope="module")
def rooms_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("candidates")
    catalog_of_rooms(root, [(130, 70, 90), (60, 90, 120), (180, 60, 80)], seed=3)
    index = CatalogIndex.open(root / "index", create=True)
    StagingEngine(device="cpu").update_index(
        index, root / "images", csv=root / "catalog.csv", progress=False
    )
    return root / "index"


def test_every_mode_in_grid_order_with_progress(rooms_index):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    calls = []
    found = engine.stage_candidates(
        product, k=2, index=rooms_index, product_type="Chair",
        progress=lambda f, m: calls.append((f, m)),
    )  # fmt: skip
    assert isinstance(found, Candidates) and found.skipped == {}
    assert [r.mode for r in found.results] == ["copy-paste", "copy-paste", "vanilla", "prompt"]
    assert found.modes == ["copy-paste", "vanilla", "prompt"]
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert any(m.startswith("vanilla:") for _, m in calls)
    prompt = found.results[-1].source
    # The given kind is the prompt's category, and its theme is the category's bandit's.
    assert prompt["category"] == "Chair"
    assert prompt["theme"] == engine.suggest_prompt("Chair").theme


def test_a_mode_that_cannot_run_is_listed_not_fatal(tmp_path):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    found = engine.stage_candidates(product, index=None)
    assert found.modes == ["vanilla", "prompt"]
    assert "no catalog index" in found.skipped["copy-paste"]
    # A catalog of studio shots only has no scene to paste into: said, the others still run.
    shots = tmp_path / "shots"
    save_image(shots / "shot.png", product)
    engine.update_index(tmp_path / "index", shots, progress=False)
    found = engine.stage_candidates(product, index=tmp_path / "index")
    assert found.modes == ["vanilla", "prompt"] and found.skipped["copy-paste"]


def test_nothing_at_all_raises_the_reason(monkeypatch):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()

    def broken(*args, **kwargs):
        raise StagingError("the generator is broken")

    monkeypatch.setattr(engine, "stage_vanilla", broken)
    monkeypatch.setattr(engine, "stage_prompt", broken)
    with pytest.raises(StagingError, match="no catalog index"):
        engine.stage_candidates(product, index=None)


def test_captions_say_scene_fit_product_and_models(rooms_index):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    found = engine.stage_candidates(product, k=1, index=rooms_index)
    pasted, vanilla, prompt = found.results
    assert label(pasted).startswith("Copy-paste · ") and "fit " in label(pasted)
    words = explain(pasted)
    assert f"Scene: {pasted.source['id']}.png." in words and "Stands where the" in words
    assert "Product kind unknown" in words  # bare photo, no typed catalog shots
    assert f"mask {pasted.source['segment_backend']}" in words
    backdrop = "backdrop only (no diffusion model)"
    assert label(prompt) == f"Prompt · {prompt.source['theme']} · square · {backdrop}"
    assert "generator studio" in explain(vanilla)
    assert "taken for Chair 80x78 cm" in product_words(
        {"product_type": "Chair", "product_size": "80x78 cm", "inferred_from": "catalog",
         "confidence": 0.64}
    )  # fmt: skip


def test_public_details_name_files_and_never_locate_them(rooms_index):
    engine = StagingEngine(device="cpu")
    product, _ = product_shot()
    pasted = engine.stage_copy_paste(product, k=1, index=rooms_index)[0]
    assert os.path.isabs(pasted.source["path"]) and os.path.isabs(pasted.source["mask"])
    details = public_details(pasted)
    assert details["source"]["file"] == os.path.basename(pasted.source["path"])
    assert "path" not in details["source"]
    text = json.dumps(details)
    assert str(rooms_index.parent) not in text and os.sep + "tmp" not in text


def test_cli_stage_all_writes_every_mode_with_its_words(rooms_index, tmp_path):
    from typer.testing import CliRunner

    from staging.cli import app

    product, _ = product_shot()
    photo = save_image(tmp_path / "stool.png", product)
    out = tmp_path / "out"
    done = CliRunner().invoke(
        app, ["stage", "all", str(photo), "-i", str(rooms_index), "-o", str(out), "-k", "2"]
    )
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "stool.all.json").read_text())
    assert [item["file"] for item in summary] == [
        "stool.copy-paste1.png", "stool.copy-paste2.png", "stool.vanilla1.png", "stool.prompt1.png",
    ]  # fmt: skip
    assert all((out / item["file"]).is_file() for item in summary)
    assert summary[0]["label"].startswith("Copy-paste · ") and "Scene: " in summary[0]["why"]
    alone = CliRunner().invoke(app, ["stage", "all", str(photo), "-o", str(tmp_path / "o2")])
    assert alone.exit_code == 0 and "copy-paste made nothing: no catalog index" in alone.output


def test_bench_studio_times_the_mask_and_the_grid_per_photo(rooms_index, tmp_path):
    from typer.testing import CliRunner

    from staging.cli import app

    product, _ = product_shot()
    photo = save_image(tmp_path / "stool.png", product)
    done = CliRunner().invoke(
        app, ["bench", "studio", str(photo), "-i", str(rooms_index), "-k", "1", "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    (row,) = report["rows"]
    assert row["results"] == {"copy-paste": 1, "vanilla": 1, "prompt": 1}
    assert row["total_seconds"] == pytest.approx(
        row["mask_seconds"] + row["grid_seconds"], abs=0.02
    )
    assert report["median_total_seconds"] == row["total_seconds"]
