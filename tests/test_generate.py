"""Prompt-based and vanilla staging without diffusion weights: backend registry, errors that
name the fix, edges, the weights-free ``studio`` backdrop, and the real pipeline end to end
(placement, buckets, cache, cut-back, scores), through the engine and the CLI.

The diffusion backends themselves run on tiny pipelines in tests/test_generate_diffusers.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from staging import StagingEngine
from staging.compose.placement import layout
from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError
from staging.generate import (
    BACKENDS,
    DEFAULT,
    PREFERENCE,
    WEIGHTS,
    best_available,
    create_generator,
    missing_weights_hint,
)
from staging.generate.base import GenerationRequest, Generator
from staging.generate.cache import GenerationCache
from staging.generate.edges import control_image, mask_contour, resize_control
from staging.generate.pipeline import choose_prompt, object_expansion, stage
from staging.generate.studio import StudioGenerator, parse_colours
from staging.models import REGISTRY, HfRepo, ModelStore
from staging.runtime import Runtime

RED, BLUE = (170, 40, 30), (30, 90, 160)


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(ModelStore([tmp_path / "models"]), "cpu")


def _product(h: int = 64, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A red box with a blue stripe on white (bounding box 24 x 32 px) and its bool mask."""
    rgb = np.full((h, w, 3), 255, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[16:48, 20:44] = True
    rgb[mask] = RED
    rgb[20:28, 24:40] = BLUE
    return rgb, mask


def _fake_weights(root, name: str) -> None:
    """Empty files where the registry expects ``name``'s files (``find`` checks presence)."""
    spec = REGISTRY[name]
    for file in spec.files:
        path = root / name / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


class Counting(Generator):
    """Wraps a generator and counts how often it really generates."""

    def __init__(self, inner: Generator):
        self.inner = inner
        self.name = inner.name
        self.models = inner.models
        self.calls = 0

    def render(self, request: GenerationRequest) -> np.ndarray:
        self.calls += 1
        return self.inner.generate(request)


# -- registry and errors ----------------------------------------------------------------------
def test_backends_and_registry_entries():
    assert DEFAULT == "studio" and set(PREFERENCE) <= set(BACKENDS)
    assert {"studio", "sd", "sd2", "sdxl", "controlnet", "pix2pix"} <= set(BACKENDS)
    for backend, models in WEIGHTS.items():
        for model in models:
            spec = REGISTRY[model]
            assert isinstance(spec.sources[0], HfRepo), backend
            assert "model_index.json" in spec.files or "config.json" in spec.files
            assert spec.licence and spec.size_mb > 100
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in REGISTRY["sdxl-inpainting"].files
    assert REGISTRY["controlnet-canny-sd15"].sources == (
        HfRepo("lllyasviel/control_v11p_sd15_canny"),
    )


def test_auto_picks_the_best_backend_on_disk(runtime, tmp_path):
    assert best_available(runtime) == "studio"
    assert "staging models pull sd-inpainting controlnet-canny-sd15" in missing_weights_hint(
        runtime
    )
    _fake_weights(tmp_path / "models", "sd-inpainting")
    assert best_available(runtime) == "sd"
    _fake_weights(tmp_path / "models", "sdxl-inpainting")
    assert best_available(runtime) == "sdxl"
    _fake_weights(tmp_path / "models", "controlnet-canny-sd15")
    assert best_available(runtime) == "controlnet"
    assert missing_weights_hint(runtime) is None
    with pytest.raises(UnknownNameError, match="studio"):
        create_generator("dalle", runtime)


def test_pix2pix_without_a_trained_model_says_how_to_train_one(runtime):
    with pytest.raises(ModelNotAvailableError, match="staging train pix2pix") as info:
        create_generator("pix2pix", runtime)
    assert "--backend studio" in str(info.value)


@pytest.mark.parametrize(
    ("backend", "command"),
    [
        ("sd", "staging models pull sd-inpainting"),
        ("sd2", "staging models pull sd2-inpainting"),
        ("sdxl", "staging models pull sdxl-inpainting"),
        ("controlnet", "staging models pull sd-inpainting controlnet-canny-sd15"),
    ],
)
def test_diffusion_backends_without_weights_name_the_pull_command(runtime, backend, command):
    with pytest.raises(ModelNotAvailableError) as info:  # before importing torch: fast
        create_generator(backend, runtime)
    assert command in str(info.value)
    installed = importlib.util.find_spec("diffusers") is not None
    assert ("pip install" in str(info.value)) != installed  # the pip line only when needed


def test_missing_diffusers_names_the_pip_command(runtime, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # "import diffusers" raises
    with pytest.raises(ModelNotAvailableError) as info:  # no weights and no diffusers: both
        create_generator("sd", runtime)
    assert "staging models pull sd-inpainting" in str(info.value)
    assert "pip install torch diffusers" in str(info.value)
    for name in ("sd-inpainting", "controlnet-canny-sd15"):
        _fake_weights(tmp_path / "models", name)
    for backend in ("sd", "controlnet"):  # weights there, diffusers missing
        with pytest.raises(StagingError, match="pip install torch diffusers"):
            create_generator(backend, runtime)


# -- edges ------------------------------------------------------------------------------------
def test_control_image_is_canny_on_the_product_plus_its_contour():
    canvas = np.full((64, 64, 3), 255, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True  # a white product on white: Canny cannot see its outline
    canvas[28:36, 16:48] = BLUE  # ... only this stripe
    canvas[2:6, 2:60] = 0  # clutter far from the product must not become an edge
    alpha = mask.astype(np.float32)
    control = control_image(canvas, alpha)
    assert control.shape == (64, 64, 3) and control.dtype == np.uint8
    assert set(np.unique(control)) <= {0, 255}
    edges = control[..., 0] > 0
    assert not edges[:10].any()
    contour = mask_contour(alpha)
    assert np.array_equal(edges & contour, contour)  # the whole outline is there
    assert edges[27:29, 20:44].any() and edges[35:37, 20:44].any()  # the stripe's edges
    plain = control_image(canvas, alpha, reinforce=False)[..., 0] > 0
    assert (contour & ~plain).sum() > 50  # Canny alone leaves the outline open


def test_resize_control_keeps_one_pixel_edges():
    control = np.zeros((200, 200, 3), np.uint8)
    control[:, 101] = 255
    control[57, :] = 255
    small = resize_control(control, 80, 80)
    assert set(np.unique(small)) <= {0, 255}
    assert (small[:, 38:43, 0] > 0).any(axis=1).all()  # the vertical line, on every row
    assert (small[21:25, :, 0] > 0).any(axis=0).all()


# -- studio backdrop ----------------------------------------------------------------------------
def _studio_request(seed=0, prompt="", size=(160, 128)) -> GenerationRequest:
    w, h = size
    image = np.full((h, w, 3), 255, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[30:100, 60:100] = 1.0  # a product standing at row 100
    image[alpha > 0] = (60, 50, 45)
    return GenerationRequest(image=image, alpha=alpha, prompt=prompt, seed=seed)


def test_studio_backdrop_is_a_sane_photo_background():
    gen = StudioGenerator()
    calls = []
    request = _studio_request(seed=3)
    request.progress = lambda done, total: calls.append((done, total))
    out = gen.generate(request)
    assert out.shape == (128, 160, 3) and out.dtype == np.uint8 and calls == [(1, 1)]
    assert np.array_equal(out, gen.generate(_studio_request(seed=3)))  # seeded
    assert not np.array_equal(out, gen.generate(_studio_request(seed=4)))
    lab = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
    # smooth: a backdrop, not noise (neighbour differences of a few levels: grain only)
    assert np.abs(np.diff(lab[..., 0], axis=1)).mean() < 4.0
    assert 3.0 < lab[..., 0].std() < 40.0  # but lit: a gradient, not a flat fill
    # a dark product gets a light backdrop: clearly separated lightness
    assert np.median(lab[:20, :, 0]) - 60 > 60
    # the contact shadow darkens the floor right under the product
    under = lab[101:106, 70:90, 0].mean()
    aside = lab[101:106, 5:20, 0].mean()
    assert under < aside - 5


def test_studio_colours_follow_the_prompt():
    wall, floor = parse_colours("a chair, navy blue wall, light oak floor")
    assert wall is not None and floor is not None
    assert wall[2] > wall[0] and wall.mean() < 100  # navy
    assert floor[0] > floor[2] and floor.mean() > 170  # light oak
    out = StudioGenerator().generate(_studio_request(prompt="navy blue wall, light oak floor"))
    top, bottom = out[:15].reshape(-1, 3).mean(0), out[-10:].reshape(-1, 3).mean(0)
    assert top[2] > top[0] + 20 and top.mean() < 110
    assert bottom[0] > bottom[2] + 20 and bottom.mean() > 140
    # themes pick palettes when no colour is named
    assert parse_colours("a sofa at the beach")[0] is not None


# -- the pipeline with the studio backend --------------------------------------------------
def test_prompt_staging_cuts_the_product_back_exactly_where_placed():
    rgb, mask = _product()
    choice = choose_prompt("prompt", category="chair")
    results = stage(
        StudioGenerator(), rgb, mask, choice, placements=["64x64", "96x64"], fill=0.5, seeds=[7]
    )
    assert [r.image.shape for r in results] == [(64, 64, 3), (64, 96, 3)]
    for staged, size in zip(results, [(64, 64), (96, 64)], strict=True):
        x0, y0, x1, y1 = layout((24, 32), size, fill=0.5).box
        assert staged.source["placement"]["box"] == [x0, y0, x1, y1]
        assert (x1 - x0, y1 - y0) == (24, 32)  # fill 0.5 of 64 px high: scale exactly 1
        solid = staged.alpha >= 1.0
        expected = np.zeros_like(staged.image)
        expected[y0:y1, x0:x1] = rgb[16:48, 20:44]
        assert solid[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].all()  # feathering stays at the rim
        assert np.array_equal(staged.image[solid], expected[solid])  # bit-exact cut-back
        assert not solid[: y0 - 1].any() and not solid[:, : x0 - 1].any()
        assert staged.ssim == 1.0 and staged.mode == "prompt"
        assert staged.source["backend"] == "studio" and staged.source["seed"] == 7
        assert staged.source["prompt"] == choice.prompt and staged.source["bucket"]
        assert 0.0 <= staged.scores["object_expansion"] < 0.2
        outside = staged.image[staged.alpha == 0]
        assert outside.std() > 1.0 and not (outside == 255).all()  # a backdrop, not the filler


def test_one_generation_per_bucket_and_seed_and_cache_hits(tmp_path):
    rgb, mask = _product()
    choice = choose_prompt("prompt", theme="beach")
    gen = Counting(StudioGenerator())
    # 120^2 and 60^2 lay the product out alike: one bucket, one generation per seed
    args = dict(placements=["120x120", "60x60", "63x112"], seeds=[0, 1])
    first = stage(gen, rgb, mask, choice, **args)
    assert len(first) == 6 and gen.calls == 4  # (square bucket + story bucket) x 2 seeds
    assert first[0].source["bucket"] == first[2].source["bucket"] != first[4].source["bucket"]
    assert not np.array_equal(first[0].image, first[1].image)  # seeds differ

    with GenerationCache(tmp_path / "cache") as cache:
        gen.calls = 0
        cold = stage(gen, rgb, mask, choice, cache=cache, **args)
        assert gen.calls == 4 and cache.misses == 4 and cache.hits == 0
        warm = stage(gen, rgb, mask, choice, cache=cache, **args)
        assert gen.calls == 4 and cache.hits == 4
        assert [r.source["cache"] for r in warm] == ["hit"] * 6
        for a, b in zip(cold, warm, strict=True):
            assert np.array_equal(a.image, b.image)
        other = stage(gen, rgb, mask, choose_prompt("prompt", theme="winter"), cache=cache,
                      placements=["120x120"], seeds=[0])  # fmt: skip
        assert gen.calls == 5 and other[0].source["cache"] == "miss"


def test_progress_goes_from_zero_to_one():
    rgb, mask = _product()
    seen: list[tuple[float, str]] = []
    stage(
        StudioGenerator(), rgb, mask, choose_prompt("vanilla"), mode="vanilla",
        placements=["64x64"], seeds=[0, 1], progress=lambda f, m: seen.append((f, m)),
    )  # fmt: skip
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(b >= a for a, b in zip(fractions, fractions[1:], strict=False))
    assert any("step 1/1" in m for _, m in seen)


def test_object_expansion_sees_the_product_spilling_out():
    h = w = 96
    alpha = np.zeros((h, w), np.float32)
    alpha[30:70, 35:60] = 1.0
    product = np.zeros((h, w, 3), np.uint8)
    product[alpha > 0] = RED
    clean = np.full((h, w, 3), (225, 225, 215), np.uint8)
    clean[alpha > 0] = RED
    assert object_expansion(clean, product, alpha) < 0.05
    spilled = clean.copy()
    spilled[26:74, 31:64] = RED  # the "background" continues the product by 4 px all round
    spilled[alpha > 0] = RED
    assert object_expansion(spilled, product, alpha) > 0.8
    # a white product on a white wall: undecidable, not an expansion
    white = np.full((h, w, 3), 235, np.uint8)
    assert object_expansion(white, white, alpha) == 0.0


def test_choose_prompt():
    assert choose_prompt("vanilla").prompt == ""
    assert choose_prompt("vanilla", category="Three-seat sofa").prompt == "a photo of a sofa"
    assert choose_prompt("vanilla", category="plant").prompt == "a photo of a plant"  # an alias
    assert choose_prompt("vanilla", category="kayak").prompt == "a photo of a kayak"  # unknown
    themed = choose_prompt("prompt", theme="coastal_light", category="sofa")
    assert themed.theme == "coastal_light" and themed.prompt.startswith("a sofa in")
    assert "watermark" in themed.negative
    first = choose_prompt("prompt", category="chair")
    assert first.theme == "scandi_living" and "Scandinavian" in first.prompt
    beach = choose_prompt("prompt", theme="beach", category="lamp")
    assert "coastal" in beach.prompt and beach.prompt.startswith("a lamp")
    free = choose_prompt("prompt", theme="a rooftop terrace at dusk")
    assert "rooftop terrace" in free.prompt
    own = choose_prompt("prompt", prompt="a mug on a desk", negative_prompt="blurry")
    assert (own.prompt, own.negative) == ("a mug on a desk", "blurry")
    assert (
        "warm fairy lights"
        in choose_prompt("prompt", category="chair", extra="warm fairy lights").prompt
    )


# -- engine and CLI --------------------------------------------------------------------------
def test_engine_stages_offline_with_the_studio_backdrop_and_says_what_to_pull(tmp_path):
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path / "models"))
    rgb, mask = _product()
    seen = []
    results = engine.stage_prompt(
        rgb, mask=mask, category="chair", placement="64x64", fill=0.5, seed=5, num_images=2,
        progress=lambda f, m: seen.append(f),
    )  # fmt: skip
    assert len(results) == 2 and [r.source["seed"] for r in results] == [5, 6]
    assert all(r.source["backend"] == "studio" and r.ssim == 1.0 for r in results)
    assert "staging models pull" in results[0].source["hint"]
    assert results[0].source["label"] == "backdrop only (no diffusion model)"
    assert results[0].source["segment_backend"] == "mask"
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert engine.generator() is engine.generator("studio")
    assert "generate:studio" in engine.loaded_models()
    vanilla = engine.stage_vanilla(rgb, mask=mask, placement="80x100", cache=tmp_path / "c")
    assert vanilla[0].mode == "vanilla" and vanilla[0].source["prompt"] == ""
    assert vanilla[0].image.shape == (100, 80, 3) and vanilla[0].source["cache"] == "miss"
    again = engine.stage_vanilla(rgb, mask=mask, placement="80x100", cache=tmp_path / "c")
    assert again[0].source["cache"] == "hit"
    with pytest.raises(ModelNotAvailableError, match="staging train pix2pix"):
        engine.stage_vanilla(rgb, mask=mask, backend="pix2pix")


def test_cli_stage_prompt_and_vanilla(tmp_path):
    from staging.cli import app
    from staging.io import save_image, save_mask

    rgb, mask = _product(96, 96)
    save_image(tmp_path / "mug.png", rgb)
    save_mask(tmp_path / "mug.mask.png", mask)
    out = tmp_path / "out"
    runner = CliRunner()
    base = ["--device", "cpu", "--models-dir", str(tmp_path / "models"), "stage"]
    result = runner.invoke(
        app,
        [*base, "prompt", str(tmp_path / "mug.png"), "--out", str(out), "--mask",
         str(tmp_path / "mug.mask.png"), "--theme", "beach", "--placement", "96x96,54x96",
         "-n", "2", "--seed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "staging models pull" in result.output  # the weights hint, once
    summary = json.loads((out / "mug.prompt.json").read_text())
    assert [s["file"] for s in summary] == [f"mug.prompt{i}.png" for i in range(1, 5)]
    assert [s["source"]["seed"] for s in summary] == [3, 4, 3, 4]
    assert summary[2]["width"] == 54 and summary[0]["ssim"] == 1.0
    result = runner.invoke(
        app,
        [*base, "vanilla", str(tmp_path / "mug.png"), "--out", str(out), "--mask",
         str(tmp_path / "mug.mask.png"), "--category", "mug", "--placement", "64x64"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "mug.vanilla1.png").is_file()
    vanilla = json.loads((out / "mug.vanilla.json").read_text())
    assert vanilla[0]["mode"] == "vanilla" and vanilla[0]["source"]["prompt"] == "a photo of a mug"
    result = runner.invoke(
        app, [*base, "vanilla", str(tmp_path / "mug.png"), "--out", str(out), "--backend", "sd"]
    )
    assert isinstance(result.exception, StagingError)
    assert "staging models pull sd-inpainting" in str(result.exception) or "pip install" in str(
        result.exception
    )
