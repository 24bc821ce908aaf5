"""The torch embedders (``inception_v3``, ``clip``) on tiny models built here.

Each test builds the real architecture with random weights (``Inception3``; a
2-layer ``CLIPVisionModelWithProjection``), saves it the way the real weights are stored (a
state dict named like the registry's file; a ``save_pretrained`` folder named like the registry
entry) and loads it through the same path users take: ``create_embedder(name, Runtime(store))``
-> ``store.path(...)`` -> ``torch.load`` / ``from_pretrained``. Only the weights differ from the
pretrained models. Skipped with a reason when torch / transformers are absent
(``pip install -r requirements-torch.txt``); the comparison with torchvision's own network
runs where torchvision imports (it is not in the test install).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import save_char_clip_tokenizer, tiny_clip_model

from staging.embed import create_embedder
from staging.errors import ModelNotAvailableError, StagingError
from staging.models import ModelStore, get_spec
from staging.runtime import Runtime


def _need(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install -r requirements-torch.txt)")


def product(background, size=(120, 150), seed: int = 0):
    """A striped disc on ``background`` (an RGB triple or "noise"); returns (image, mask)."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    mask = (yy - h // 2) ** 2 + (xx - w // 2) ** 2 < (min(h, w) // 3) ** 2
    if isinstance(background, str):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        image = np.empty((h, w, 3), np.uint8)
        image[:] = background
    stripes = ((xx // 5 + yy // 7) % 2).astype(np.uint8)
    colour = np.stack([120 + 80 * stripes, 60 + 40 * stripes, 30 + 20 * stripes], axis=-1)
    image[mask] = colour[mask]
    return image, mask


def other_product(seed: int = 1):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    return image, None


def check_embeddings(embedder, dim: int) -> None:
    """Unit norm, determinism, batch == single, masked background invariance."""
    a, mask = product((255, 255, 255))
    b, _ = product("noise")
    c, _ = other_product()
    batch = embedder.embed_batch([a, b, c], [mask, mask, None])
    assert batch.shape == (3, dim) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # deterministic, and a batch of one (embed) gives the same vector as inside a batch
    np.testing.assert_allclose(embedder.embed(c), batch[2], atol=1e-5)
    # with its mask, the product embeds the same on white and on noise
    assert float(batch[0] @ batch[1]) > 0.999
    # without it, the noisy background changes the embedding
    unmasked = embedder.embed(b)
    assert float(unmasked @ batch[1]) < float(batch[0] @ batch[1])
    assert embedder.embed_batch([]).shape == (0, dim)


# ---------------------------------------------------------------------------- inception_v3


def calibrate_batchnorm(net, torch) -> None:
    """Set BatchNorm statistics from one small random batch, as training would. With the
    default (mean 0, var 1) a random 90-layer network maps every input to about the same
    vector, and the tests below could not tell images apart."""
    aux = net.AuxLogits
    net.AuxLogits, net.aux_logits = None, False  # torchvision's aux head needs 299 x 299 input
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: exactly this batch's statistics
    net.train()
    with torch.no_grad():
        net(torch.randn(2, 3, 96, 96))
    net.AuxLogits, net.aux_logits = aux, aux is not None
    net.eval()


# sha256 of torchvision 0.29.1 Inception3's state-dict keys and shapes, sorted, aux head and fc
# left out ("name (shape)" lines joined by newlines): the file format the real weights have.
TORCHVISION_KEYS = (564, "5c5cb906421dd92101f74d73352774dd0c7312df1c7e1eab4f2698dfca34cd92")


def key_digest(state: dict) -> tuple[int, str]:
    import hashlib

    lines = sorted(
        f"{k} {tuple(v.shape)}" for k, v in state.items() if not k.startswith(("AuxLogits.", "fc."))
    )
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A random-weight Inception3 state dict saved under the registry's file name, with an aux
    head key and the 1000-way fc like the real file; plus the network itself."""
    _need("torch")
    import torch

    from staging.embed.inception_net import Inception3

    torch.manual_seed(0)
    net = Inception3(transform_input=True, num_classes=1000)
    calibrate_batchnorm(net, torch)
    root = tmp_path_factory.mktemp("inception")
    (file,) = get_spec("inception_v3").files
    state = net.state_dict() | {"AuxLogits.fc.weight": torch.zeros(1000, 768)}
    torch.save(state, root / file)
    return root, net


@pytest.fixture(scope="module")
def inception(inception_weights):
    root, _ = inception_weights
    return create_embedder("inception_v3", Runtime(ModelStore([root])))


def test_inception_v3_loads_the_registry_file_and_embeds(inception):
    assert inception.name == "inception_v3" and inception.dim == 2048 and inception.size == 299
    assert not inception.module.training and inception.module.AuxLogits is None
    check_embeddings(inception, 2048)


def test_inception_v3_has_torchvisions_parameter_names_and_shapes(inception):
    """Without torchvision installed, the recorded digest of its state dict stands in for it."""
    assert key_digest(inception.module.state_dict()) == TORCHVISION_KEYS


# torchvision 0.29.1's Inception3 pool features (L2-normalised) for the network and input of
# the test below: its five largest entries and their values (recorded where torchvision imports;
# this network's output differed from it by 1.3e-7).
TORCHVISION_TOP5 = ([1671, 1694, 1681, 1303, 1152], [0.23412, 0.23283, 0.19506, 0.195, 0.18446])


def test_inception_v3_reproduces_torchvisions_recorded_output():
    """Guards the computation (pooling kinds, branch order, input transform) in the test
    install, where torchvision is absent: seeded weights give torchvision's recorded output."""
    _need("torch")
    import torch

    from staging.embed.inception_net import Inception3

    torch.manual_seed(0)
    net = Inception3(transform_input=True, num_classes=1000)
    calibrate_batchnorm(net, torch)
    net.fc = torch.nn.Identity()
    x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = net(x)[0]
    top = torch.topk(features / features.norm(), 5)
    assert top.indices.tolist() == TORCHVISION_TOP5[0]
    # The values differ by up to 1.3e-3 across CPUs (seen on an AMD EPYC VM with torch 2.13's
    # CPU kernels); the five indices, which a wrong pooling or branch order changes, are exact.
    np.testing.assert_allclose(top.values.numpy(), TORCHVISION_TOP5[1], atol=3e-3)


def test_inception_v3_computes_what_torchvisions_inception3_computes(tmp_path):
    """torchvision's own network and file: loaded strictly, the embedding is its 2048-d pool
    (fc removed) on the same input. Runs only where torchvision imports (it is left out of the
    test install: on PyPI it comes only as a CUDA build, see requirements-torch.txt)."""
    _need("torch", "torchvision")
    import torch

    try:
        from torchvision.models import Inception3
    except (ImportError, RuntimeError) as exc:  # torchvision built for another torch
        pytest.skip(f"torchvision does not import here: {exc}")
    torch.manual_seed(1)
    net = Inception3(num_classes=1000, aux_logits=True, transform_input=True, init_weights=False)
    calibrate_batchnorm(net, torch)
    assert key_digest(net.state_dict()) == TORCHVISION_KEYS
    (file,) = get_spec("inception_v3").files
    torch.save(net.state_dict(), tmp_path / file)
    embedder = create_embedder("inception_v3", Runtime(ModelStore([tmp_path])))
    image, mask = product((255, 255, 255))
    x = embedder.preprocess([embedder.crop(image, mask)])
    assert tuple(x.shape) == (1, 3, 299, 299)
    pooled = {}
    hook = net.avgpool.register_forward_hook(lambda m, i, o: pooled.setdefault("x", o))
    try:
        with torch.no_grad():
            net(x)
    finally:
        hook.remove()
    ref = pooled["x"].flatten(1)[0].numpy()
    ref = ref / np.linalg.norm(ref)
    np.testing.assert_allclose(embedder.embed(image, mask), ref, atol=1e-4)


def test_inception_v3_accepts_a_state_dict_without_aux_head_or_fc(
    tmp_path, inception, inception_weights
):
    """Also a checkpoint saved from a DataParallel wrapper ("module." keys); same weights."""
    import torch

    _, net = inception_weights
    state = {
        "module." + k: v
        for k, v in net.state_dict().items()
        if not k.startswith(("AuxLogits.", "fc."))
    }
    (file,) = get_spec("inception_v3").files
    torch.save(state, tmp_path / file)
    embedder = create_embedder("inception_v3", Runtime(ModelStore([tmp_path])))
    loaded, reference = embedder.module.state_dict(), inception.module.state_dict()
    assert loaded.keys() == reference.keys()
    assert all(torch.equal(loaded[k], reference[k]) for k in loaded)


def test_inception_v3_missing_or_bad_weights(tmp_path):
    _need("torch")
    with pytest.raises(ModelNotAvailableError, match="staging models pull inception_v3"):
        create_embedder("inception_v3", Runtime(ModelStore([tmp_path])))
    (file,) = get_spec("inception_v3").files
    (tmp_path / file).write_bytes(b"not a checkpoint")
    with pytest.raises(StagingError, match="--force"):
        create_embedder("inception_v3", Runtime(ModelStore([tmp_path])))


# ------------------------------------------------------------------------------------- clip

CLIP = "clip-vit-base-patch32"


def tiny_clip_vision(image_size: int = 64, projection_dim: int = 16):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        patch_size=8,
        image_size=image_size,
        projection_dim=projection_dim,
    )
    return CLIPVisionModelWithProjection(config).eval()


def tiny_processor(image_size: int = 64):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny CLIP vision tower + processor saved like the registry's folder."""
    _need("torch", "transformers")
    root = tmp_path_factory.mktemp("clip")
    model = tiny_clip_vision()
    model.save_pretrained(root / CLIP)
    tiny_processor().save_pretrained(root / CLIP)
    save_char_clip_tokenizer(root / CLIP)
    assert all((root / CLIP / f).is_file() for f in get_spec(CLIP).files)
    return root, model


@pytest.fixture(scope="module")
def clip(clip_folder):
    root, _ = clip_folder
    return create_embedder("clip", Runtime(ModelStore([root])))


def test_clip_loads_the_registry_folder_and_embeds(clip):
    assert clip.name == "clip" and clip.dim == 16 and clip.size == 64
    check_embeddings(clip, 16)


def test_clip_embeds_are_the_models_image_embeds(clip, clip_folder):
    import torch

    _, model = clip_folder
    image, mask = product((255, 255, 255))
    x = clip.preprocess([clip.crop(image, mask)])
    assert tuple(x.shape) == (1, 3, 64, 64)
    with torch.no_grad():
        ref = model(pixel_values=x).image_embeds[0].numpy()
    np.testing.assert_allclose(clip.embed(image, mask), ref / np.linalg.norm(ref), atol=1e-5)


def test_clip_loads_a_full_clip_model_checkpoint(tmp_path):
    """OpenAI's checkpoint is a whole CLIPModel (text + vision): its vision tower must load."""
    _need("torch", "transformers")
    import torch

    full = tiny_clip_model(16)
    full.save_pretrained(tmp_path / CLIP)
    tiny_processor(32).save_pretrained(tmp_path / CLIP)
    save_char_clip_tokenizer(tmp_path / CLIP)
    embedder = create_embedder("clip", Runtime(ModelStore([tmp_path])))
    assert embedder.dim == 12 and embedder.size == 32
    image, mask = product((255, 255, 255))
    x = embedder.preprocess([embedder.crop(image, mask)])
    with torch.no_grad():
        ref = full.get_image_features(pixel_values=x)
    ref = getattr(ref, "pooler_output", ref)[0].numpy()  # transformers 5 may wrap it
    np.testing.assert_allclose(embedder.embed(image, mask), ref / np.linalg.norm(ref), atol=1e-5)


def test_clip_missing_or_incomplete_checkpoint(tmp_path, clip_folder):
    _need("torch", "transformers")
    with pytest.raises(ModelNotAvailableError, match=f"staging models pull {CLIP}"):
        create_embedder("clip", Runtime(ModelStore([tmp_path])))
    root, _ = clip_folder
    partial = tmp_path / "partial"
    shutil.copytree(root / CLIP, partial / CLIP)
    (partial / CLIP / "model.safetensors").unlink()  # an interrupted copy
    with pytest.raises(ModelNotAvailableError, match=f"staging models pull {CLIP}"):
        create_embedder("clip", Runtime(ModelStore([partial])))
    (partial / CLIP / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(StagingError, match="--force"):
        create_embedder("clip", Runtime(ModelStore([partial])))


def test_clip_without_torchvision_uses_the_pil_processor(clip_folder, clip, monkeypatch):
    """transformers 5's CLIPImageProcessor needs torchvision; without it the PIL twin runs,
    with (nearly) the same pixels and so the same embedding."""
    _need("torch", "transformers")
    import transformers

    if not hasattr(transformers, "CLIPImageProcessorPil"):
        pytest.skip("this transformers has a single (PIL) CLIPImageProcessor")
    root, _ = clip_folder
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now fails
    embedder = create_embedder("clip", Runtime(ModelStore([root])))
    assert type(embedder.processor).__name__ == "CLIPImageProcessorPil"
    image, mask = product((255, 255, 255))
    assert float(embedder.embed(image, mask) @ clip.embed(image, mask)) > 0.99


@pytest.mark.parametrize(
    ("name", "blocked", "command"),
    [
        ("inception_v3", "torch", "pip install torch"),
        ("clip", "torch", "pip install torch transformers"),
        ("clip", "transformers", "pip install torch transformers"),
    ],
)
def test_missing_packages_name_the_pip_command(name, blocked, command, tmp_path, monkeypatch):
    """Shown even where the packages are installed: the import is made to fail."""
    for module in [m for m in sys.modules if m == blocked or m.startswith(blocked + ".")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(StagingError, match=command) as info:
        create_embedder(name, Runtime(ModelStore([tmp_path])))
    assert not isinstance(info.value, ModelNotAvailableError)


# ---------------------------------------------------- real weights (only when ../shared has them)

SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "model", "dim"), [("inception_v3", "inception_v3", 2048), ("clip", CLIP, 512)]
)
def test_real_weights(name, model, dim):
    _need("torch", "transformers")
    store = ModelStore([SHARED_MODELS])
    if store.find(model) is None:
        pytest.skip(f"{model} is not in {SHARED_MODELS} (real weights are not shipped)")
    assert store.status(model, verify=True).checksum_ok in (True, None)
    embedder = create_embedder(name, Runtime(store))
    assert embedder.dim == dim
    a, mask = product((255, 255, 255))
    b, _ = product("noise")
    e = embedder.embed_batch([a, b], [mask, mask])
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert float(e[0] @ e[1]) > 0.999
