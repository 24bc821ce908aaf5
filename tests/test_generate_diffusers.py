"""The diffusion backends on tiny pipelines, through the real loading and staging code.

Tiny UNets, VAEs, CLIP text encoders and a ControlNet (random weights, a few hundred KB) are
built here with a tokenizer made in the test, saved with ``save_pretrained`` into a models
directory *in the registry's own layout and file names* (``sd-inpainting``,
``sdxl-inpainting`` as fp16 files, ``controlnet-canny-sd15``, ``sd2-inpainting``), and loaded
by the engine with ``from_pretrained(local_files_only=True)`` like real checkpoints. The
images are noise, so the assertions are about what the pipeline guarantees whatever the
model paints: the product cut back bit-exact, placement geometry, seeds, progress, edge
conditioning, one load per engine, cache hits.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from staging import StagingEngine, diffusion  # noqa: E402
from staging.compose.placement import layout  # noqa: E402
from staging.generate import _diffusers  # noqa: E402
from staging.generate.cache import GenerationCache  # noqa: E402
from staging.generate.edges import mask_contour  # noqa: E402
from staging.models import REGISTRY  # noqa: E402

STEPS = 2
RED, BLUE = (170, 40, 30), (30, 90, 160)


# -- tiny checkpoints ----------------------------------------------------------------------------
def _byte_chars() -> list[str]:
    """GPT-2/CLIP's byte-to-unicode table: a byte-level BPE vocabulary needs all 256."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars, extra = list(keep), 0
    codes = list(keep)
    for b in range(256):
        if b not in keep:
            chars.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _tokenizer(folder: Path):
    """A CLIP tokenizer with a byte-level vocabulary and no merges (every character is a
    token): real tokenisation code, a 514-token vocabulary."""
    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return transformers.CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16
    )


def _text_encoder(tok, projection: bool = False):
    config = transformers.CLIPTextConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=16,
        projection_dim=32,
    )
    cls = transformers.CLIPTextModelWithProjection if projection else transformers.CLIPTextModel
    return cls(config)


def _vae():
    return diffusers.AutoencoderKL(
        block_out_channels=[16, 32],
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )


_UNET = dict(
    block_out_channels=(16, 32),
    layers_per_block=1,
    sample_size=32,  # latent 32 x VAE factor 2: 64 px native
    in_channels=9,  # inpainting UNet: latents + mask + masked-image latents
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=8,
)


def _real_tokenizer_files(folder: Path, scratch: Path) -> None:
    """Hub SD repos ship vocab.json + merges.txt (no tokenizer.json): load the same way."""
    for sub in ("tokenizer", "tokenizer_2"):
        target = folder / sub
        if target.is_dir():
            shutil.copy(scratch / "vocab.json", target / "vocab.json")
            shutil.copy(scratch / "merges.txt", target / "merges.txt")
            special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"}
            special |= {"pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
            (target / "special_tokens_map.json").write_text(json.dumps(special))
            (target / "tokenizer.json").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A models directory holding the four diffusion entries of the registry, tiny."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("diffusion-models")
    scratch = root / ".tokenizer"
    tok = _tokenizer(scratch)

    unet = diffusers.UNet2DConditionModel(**_UNET, cross_attention_dim=32, attention_head_dim=4)
    scheduler = diffusers.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    sd = diffusers.StableDiffusionInpaintPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tok),
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=transformers.CLIPImageProcessor(),
        requires_safety_checker=False,
    )
    sd.save_pretrained(root / "sd-inpainting")
    _real_tokenizer_files(root / "sd-inpainting", scratch)
    shutil.copytree(root / "sd-inpainting", root / "sd2-inpainting")

    net = diffusers.ControlNetModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        conditioning_embedding_out_channels=(8, 16),  # one stride-2 step: the VAE's factor
        norm_num_groups=8,
    )
    net.save_pretrained(root / "controlnet-canny-sd15")

    unet_xl = diffusers.UNet2DConditionModel(
        **_UNET,
        cross_attention_dim=64,  # both text encoders' hidden states, concatenated
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 size/crop ids + pooled text
    )
    xl = diffusers.StableDiffusionXLInpaintPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tok),
        text_encoder_2=_text_encoder(tok, projection=True),
        tokenizer=tok,
        tokenizer_2=tok,
        unet=unet_xl,
        scheduler=diffusers.EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
        ),
    )
    # Like the registry entry: the fp16 files only (upcast to fp32 on CPU when loaded).
    xl.to(torch.float16).save_pretrained(root / "sdxl-inpainting", variant="fp16")
    _real_tokenizer_files(root / "sdxl-inpainting", scratch)

    for name in ("sd-inpainting", "sd2-inpainting", "sdxl-inpainting", "controlnet-canny-sd15"):
        for file in REGISTRY[name].files:  # the registry's file list, exactly
            assert (root / name / file).is_file(), f"{name}/{file}"
    return root


@pytest.fixture(scope="module")
def engine(models) -> StagingEngine:
    return StagingEngine(device="cpu", models_dir=str(models))


def _product() -> tuple[np.ndarray, np.ndarray]:
    """A red box with a blue stripe on white (bounding box 24 x 32 px) and its mask."""
    rgb = np.full((64, 64, 3), 255, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 20:44] = True
    rgb[mask] = RED
    rgb[20:28, 24:40] = BLUE
    return rgb, mask


class Spy:
    """Stands in for a diffusers pipeline and records the arguments of every call."""

    def __init__(self, pipeline):
        self._pipeline = pipeline
        self.calls: list[dict] = []

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self._pipeline(**kwargs)


def _assert_exact_cut_back(staged, rgb, mask, size=(64, 64)):
    x0, y0, x1, y1 = layout((24, 32), size, fill=0.5).box
    assert (x1 - x0, y1 - y0) == (24, 32)  # scale 1: the cut-back must be the input itself
    solid = staged.alpha >= 1.0
    assert solid[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].all()
    expected = np.zeros_like(staged.image)
    expected[y0:y1, x0:x1] = rgb[16:48, 20:44]
    assert np.array_equal(staged.image[solid], expected[solid])
    assert staged.ssim == 1.0


# -- tests -----------------------------------------------------------------------------------
def test_sd_end_to_end_exact_cut_back_seeds_and_progress(engine):
    rgb, mask = _product()
    seen: list[tuple[float, str]] = []
    kwargs = dict(mask=mask, category="chair", placement="64x64", fill=0.5, steps=STEPS)
    results = engine.stage_prompt(
        rgb, backend="sd", seed=11, num_images=2, progress=lambda f, m: seen.append((f, m)),
        **kwargs,
    )  # fmt: skip
    assert len(results) == 2
    for staged, seed in zip(results, (11, 12), strict=True):
        _assert_exact_cut_back(staged, rgb, mask)
        assert staged.mode == "prompt" and staged.source["seed"] == seed
        assert staged.source["backend"] == "sd" and staged.source["model"] == "sd-inpainting"
        assert "label" not in staged.source  # a real diffusion result: no "backdrop only"
        assert staged.source["steps"] == STEPS and staged.source["generation_size"] == [64, 64]
        assert 0.0 <= staged.scores["object_expansion"] <= 1.0
    steps = [m for _, m in seen if "step" in m]
    assert steps == [f"generating {i}/2 (sd, seed {s}): step {k}/2"
                     for i, s in ((1, 11), (2, 12)) for k in (1, 2)]  # fmt: skip
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # seeds: the same seed paints the same background, another seed another one
    again = engine.stage_prompt(rgb, backend="sd", seed=11, **kwargs)[0]
    assert np.array_equal(again.image, results[0].image)
    background = results[0].alpha == 0
    assert not np.array_equal(results[0].image[background], results[1].image[background])


def test_controlnet_is_conditioned_on_the_product_edges(engine):
    rgb, mask = _product()
    generator = engine.generator("controlnet")
    assert generator.uses_control and generator.models == ("sd-inpainting", "controlnet-canny-sd15")
    spy = Spy(generator.pipeline)
    generator.pipeline = spy
    try:
        staged = engine.stage_prompt(
            rgb, mask=mask, backend="controlnet", placement="64x64", fill=0.5, steps=STEPS
        )[0]
    finally:
        generator.pipeline = spy._pipeline
    _assert_exact_cut_back(staged, rgb, mask)
    (call,) = spy.calls
    assert call["controlnet_conditioning_scale"] == pytest.approx(0.8)
    assert call["num_inference_steps"] == STEPS and call["strength"] == 1.0
    control = np.asarray(call["control_image"])[..., 0] > 0
    inpaint_mask = np.asarray(call["mask_image"]) > 127  # white = repaint = background
    product = ~inpaint_mask
    assert control.shape == product.shape
    assert (control & mask_contour(product.astype(np.float32))).sum() > 0.9 * mask_contour(
        product.astype(np.float32)
    ).sum()  # the outline is in the conditioning
    far = np.ones_like(product)
    far[10:-10, 10:-10] = False
    assert not (control & far & inpaint_mask).any()  # and nothing far from the product


def test_sdxl_loads_fp16_files_in_fp32_on_cpu(engine, models):
    assert diffusion.fp16_variant(models / "sdxl-inpainting") == "fp16"
    assert diffusion.fp16_variant(models / "sd-inpainting") is None
    generator = engine.generator("sdxl")
    assert generator.pipeline.unet.dtype == torch.float32  # fp16 only on CUDA
    assert generator.native == 64 and generator.multiple == 4
    rgb, mask = _product()
    staged = engine.stage_vanilla(
        rgb, mask=mask, category="chair", backend="sdxl", placement="64x64", fill=0.5,
        steps=STEPS,
    )[0]  # fmt: skip
    _assert_exact_cut_back(staged, rgb, mask)
    assert staged.mode == "vanilla" and staged.source["prompt"] == "a photo of a chair"
    assert staged.source["model"] == "sdxl-inpainting"


def test_auto_prefers_controlnet_loads_once_and_the_cache_skips_generation(engine, tmp_path):
    assert engine.generator() is engine.generator("controlnet")
    assert engine.generator("sd2").models == ("sd2-inpainting",)
    assert [m for m in engine.loaded_models() if m.startswith("generate:")].count(
        "generate:controlnet"
    ) == 1
    rgb, mask = _product()
    generator = engine.generator()
    spy = Spy(generator.pipeline)
    generator.pipeline = spy
    try:
        with GenerationCache(tmp_path / "cache") as cache:
            args = dict(mask=mask, placement=["64x64", "32x32"], fill=0.5, steps=STEPS)
            cold = engine.stage_prompt(rgb, theme="beach", cache=cache, **args)
            warm = engine.stage_prompt(rgb, theme="beach", cache=cache, **args)
    finally:
        generator.pipeline = spy._pipeline
    assert len(spy.calls) == 1  # two placements, one bucket, one generation; then cache hits
    assert [r.source["cache"] for r in cold] == ["miss", "miss"]
    assert [r.source["cache"] for r in warm] == ["hit", "hit"]
    assert cold[0].source["backend"] == "controlnet" and "hint" not in cold[0].source
    for a, b in zip(cold, warm, strict=True):
        assert np.array_equal(a.image, b.image)
    assert cold[1].image.shape == (32, 32, 3)


def test_sd_inpainter_shares_the_loader_and_keeps_pixels_outside_the_hole(engine):
    from staging.inpaint.sd import StableDiffusionInpainter

    inpainter = StableDiffusionInpainter.from_store(engine.runtime, size=64, steps=STEPS)
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    hole = np.zeros((48, 80), bool)
    hole[10:30, 20:50] = True
    out = inpainter.inpaint(image, hole)
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.array_equal(out[hole], image[hole])


def test_memory_savers_on_cuda(monkeypatch):
    """fp16 weights are chosen on CUDA, and a pipeline too big for the GPU is offloaded."""

    class Pipeline:
        def __init__(self):
            self.calls: list[str] = []
            self.vae = self
            self.components = {"unet": torch.nn.Linear(1000, 1000)}  # 4 MB of weights

        def enable_tiling(self):
            self.calls.append("vae_tiling")

        def enable_attention_slicing(self):
            self.calls.append("attention_slicing")

        def enable_model_cpu_offload(self, device=None):
            self.calls.append(f"offload:{device}")

        def to(self, device):
            self.calls.append(f"to:{device}")

    class Props:
        def __init__(self, total_memory):
            self.total_memory = total_memory

    assert diffusion.torch_dtype(torch, "cuda:0") == torch.float16
    assert diffusion.torch_dtype(torch, "cpu") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(diffusion.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props(8 * 2**20))
    small_gpu = Pipeline()
    diffusion.place(small_gpu, "cuda:1")
    assert small_gpu.calls == ["vae_tiling", "attention_slicing", "offload:cuda:1"]
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props(24 * 2**30))
    big_gpu = Pipeline()
    diffusion.place(big_gpu, "cuda")
    assert big_gpu.calls == ["vae_tiling", "to:cuda"]


def test_working_size_keeps_the_aspect_at_the_native_pixel_count():
    assert _diffusers.working_size(1080, 1080, 512, 64) == (512, 512)
    w, h = _diffusers.working_size(1080, 1920, 1024, 64)
    assert (w % 64, h % 64) == (0, 0) and abs(w / h - 1080 / 1920) < 0.05
    assert abs(w * h - 1024**2) / 1024**2 < 0.1
    assert _diffusers.working_size(728, 90, 512, 64)[1] == 192  # never below one latent block


def test_sd_outpaint_lora_trains_resumes_and_changes_what_sd_paints(models, tmp_path):
    """``staging train sd-outpaint`` on the tiny SD inpainting model: loss, LoRA file,
    resume, and the ``sd`` generator with ``lora=`` paints differently from the base."""
    pytest.importorskip("peft")
    from staging.errors import StagingError
    from staging.io import load_image, save_image
    from staging.train.dataset import Record, build_dataset
    from staging.train.sd_outpaint import OutpaintTraining, train_sd_outpaint

    rgb, mask = _product()
    scenes = []
    for i in range(3):
        scene = np.full_like(rgb, (60 + 40 * i, 120, 90))
        scene[mask] = rgb[mask]
        scenes.append(Record(f"s{i}", save_image(tmp_path / f"s{i}.png", scene), "a red box"))
    segment = lambda im: (np.all(im == rgb, -1) & mask, mask.astype(np.float32))  # noqa: E731
    build_dataset(scenes, tmp_path / "data", load_image, segment, holes=1)
    runtime = StagingEngine(device="cpu", models_dir=str(models)).runtime
    options = dict(size=64, lr=1e-2, save_every=2)
    first = train_sd_outpaint(tmp_path / "data", tmp_path / "lora", runtime,
                              OutpaintTraining(steps=3, **options), progress=False)  # fmt: skip
    assert first["steps"] == 3 and np.isfinite(first["history"]).all()
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    again = train_sd_outpaint(tmp_path / "data", tmp_path / "lora", runtime,
                              OutpaintTraining(steps=5, **options), progress=False)  # fmt: skip
    assert again["steps"] == 5 and len(again["history"]) == 2

    kwargs = dict(mask=mask, placement="64x64", fill=0.5, steps=STEPS, backend="sd", seed=3,
                  cache=False)  # fmt: skip
    plain = StagingEngine(device="cpu", models_dir=str(models)).stage_prompt(rgb, **kwargs)[0]
    tuned_engine = StagingEngine(device="cpu", models_dir=str(models), lora=str(tmp_path / "lora"))
    tuned = tuned_engine.stage_prompt(rgb, **kwargs)[0]
    _assert_exact_cut_back(tuned, rgb, mask)
    assert not np.array_equal(plain.image, tuned.image)  # the adapters change the painting
    broken = StagingEngine(device="cpu", models_dir=str(models), lora=str(tmp_path / "nothing"))
    with pytest.raises(StagingError, match="staging train sd-outpaint"):
        broken.stage_prompt(rgb, **kwargs)
