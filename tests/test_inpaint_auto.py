"""``auto`` inpainting (issue 30): ``sd`` on CUDA with torch, diffusers and its weights, else
``lama`` once pulled, else ``structure``, with fake models in a temporary models folder."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

import numpy as np
import pytest

from staging.engine import StagingEngine
from staging.inpaint import AUTO, best_available, create_inpainter
from staging.models import ModelStore, get_spec
from staging.runtime import Runtime
from tests.helpers.images import textured_room as _textured_room
from tests.helpers.models import tiny_lama as _tiny_lama

STACK = ("torch", "diffusers", "transformers")


def _fake_sd_weights(root) -> None:
    """Every file of the ``sd-inpainting`` registry entry, empty: enough to be 'on disk'."""
    spec = get_spec("sd-inpainting")
    for name in spec.files:
        path = root / spec.name / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _fake_lama_file(root) -> None:
    (root / get_spec("lama").files[0]).write_bytes(b"not read by the ranking")


@pytest.fixture
def stack_installed(monkeypatch):
    """torch, diffusers and transformers look installed, whatever this machine has."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name in STACK:
            return importlib.machinery.ModuleSpec(name, None)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def _hole(h: int = 120, w: int = 160) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[40:80, 50:110] = True
    return hole


# --------------------------------------------------------------------------- the ranking


def test_nothing_on_disk_is_structure(tmp_path, stack_installed):
    assert best_available(Runtime(ModelStore([tmp_path]), "cuda")) == "structure"
    assert best_available(Runtime(ModelStore([tmp_path]), "cpu")) == "structure"


def test_lama_on_disk_is_lama(tmp_path):
    _fake_lama_file(tmp_path)
    assert best_available(Runtime(ModelStore([tmp_path]), "cpu")) == "lama"
    assert best_available(Runtime(ModelStore([tmp_path]), "cuda")) == "lama"  # no sd weights


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_sd_weights_off_cuda_are_not_sd(tmp_path, stack_installed, device):
    _fake_sd_weights(tmp_path)
    assert best_available(Runtime(ModelStore([tmp_path]), device)) == "structure"
    _fake_lama_file(tmp_path)
    assert best_available(Runtime(ModelStore([tmp_path]), device)) == "lama"


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_sd_weights_on_cuda_are_sd_before_lama(tmp_path, stack_installed, device):
    _fake_sd_weights(tmp_path)
    _fake_lama_file(tmp_path)
    assert best_available(Runtime(ModelStore([tmp_path]), device)) == "sd"


def test_sd_weights_incomplete_are_not_sd(tmp_path, stack_installed):
    _fake_sd_weights(tmp_path)
    (tmp_path / "sd-inpainting" / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    _fake_lama_file(tmp_path)
    assert best_available(Runtime(ModelStore([tmp_path]), "cuda")) == "lama"


@pytest.mark.parametrize("missing", STACK)
def test_sd_without_its_packages_is_not_sd(tmp_path, monkeypatch, missing):
    _fake_sd_weights(tmp_path)
    _fake_lama_file(tmp_path)
    monkeypatch.setitem(sys.modules, missing, None)  # find_spec: None, as if not installed
    assert best_available(Runtime(ModelStore([tmp_path]), "cuda")) == "lama"


def test_auto_never_downloads(tmp_path, monkeypatch, stack_installed):
    def pull(self, name, *args, **kwargs):
        raise AssertionError(f"auto fetched {name}")

    monkeypatch.setattr(ModelStore, "pull", pull)
    store = ModelStore([tmp_path], offline=False, allow_download=True)
    assert best_available(Runtime(store, "cuda")) == "structure"
    assert create_inpainter(AUTO, Runtime(store, "cpu")).name == "structure"


def test_create_inpainter_auto_builds_the_ranked_one(tmp_path):
    runtime = Runtime(ModelStore([tmp_path]), "cpu")
    assert create_inpainter(AUTO, runtime).name == "structure"
    _tiny_lama(tmp_path / "lama_fp32.onnx")
    assert create_inpainter(AUTO, runtime).name == "lama"


# --------------------------------------------------------------------------- through the engine


def test_engine_default_fills_with_lama_when_pulled(tmp_path):
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    image, hole = _textured_room(120, 160), _hole()
    assert engine.resolve_inpaint_backend() == "structure"
    engine.inpaint(image, hole)
    assert engine.loaded_models() == ["inpaint:structure"]

    _tiny_lama(tmp_path / "lama_fp32.onnx")  # `staging models pull lama`, mid-session
    assert engine.resolve_inpaint_backend() == engine.resolve_inpaint_backend("auto") == "lama"
    out = engine.inpaint(image, hole)
    assert "inpaint:lama" in engine.loaded_models()
    assert engine.inpainter().name == "lama" and engine.inpainter() is engine.inpainter("lama")
    np.testing.assert_array_equal(out[~hole], image[~hole])
    inner = out[45:75, 55:105].astype(float)  # the tiny LaMa paints its hole mid-grey
    assert abs(inner.mean() - 127.5) < 2 and inner.std() < 2


def test_engine_explicit_names_still_win(tmp_path):
    _tiny_lama(tmp_path / "lama_fp32.onnx")
    engine = StagingEngine(device="cpu", models_dir=str(tmp_path))
    assert engine.resolve_inpaint_backend("structure") == "structure"
    assert engine.resolve_inpaint_backend("edgeconnect:some/dir") == "edgeconnect:some/dir"
    assert engine.inpainter("telea").name == "telea"
    assert "inpaint:lama" not in engine.loaded_models()


def test_engine_on_cuda_with_sd_weights_resolves_sd(tmp_path, monkeypatch):
    """The engine's own device choice (``auto``) finds CUDA; nothing is loaded to say so."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _fake_sd_weights(tmp_path)
    _fake_lama_file(tmp_path)
    engine = StagingEngine(device="auto", models_dir=str(tmp_path))
    if not all(importlib.util.find_spec(m) for m in STACK):
        pytest.skip("diffusers and transformers are not installed")
    assert engine.device == "cuda"
    assert engine.resolve_inpaint_backend() == "sd"
    assert engine.loaded_models() == []
    cpu = StagingEngine(device="cpu", models_dir=str(tmp_path))
    assert cpu.resolve_inpaint_backend() == "lama"
