"""Model registry and store: lookup, clear errors, offline mode, verified downloads."""

from __future__ import annotations

import hashlib

import pytest

from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError
from staging.models import REGISTRY, ModelSpec, ModelStore, checksum_matches, register
from staging.settings import Settings


@pytest.fixture
def local_model(tmp_path):
    """A 'remote' model served from a file:// URL, so the real download code runs offline."""
    payload = b"pretend-onnx-bytes" * 100
    source = tmp_path / "remote" / "tiny.onnx"
    source.parent.mkdir()
    source.write_bytes(payload)
    spec = register(
        ModelSpec(
            "tiny-test-model",
            "segment",
            source.as_uri(),
            ("tiny.onnx",),
            "MIT",
            0.001,
            "a test model",
            {"tiny.onnx": "sha256:" + hashlib.sha256(payload).hexdigest()},
        )
    )
    yield spec, payload
    REGISTRY.pop(spec.name)


def test_registry_entries_are_complete():
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.files and spec.licence and spec.size_mb > 0 and spec.description
        assert spec.source.startswith(("hf://", "https://"))
        for file, checksum in spec.checksums.items():
            assert file in spec.files
            assert checksum.split(":")[0] in {"sha256", "md5"}


def test_find_searches_every_dir_in_order(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (second / "u2netp.onnx").write_bytes(b"x")
    store = ModelStore([first, second])
    assert store.find("u2netp") == second / "u2netp.onnx"
    (first / "u2netp.onnx").write_bytes(b"y")
    assert store.find("u2netp") == first / "u2netp.onnx"


def test_missing_model_names_the_command(tmp_path):
    store = ModelStore([tmp_path])
    with pytest.raises(ModelNotAvailableError) as info:
        store.path("u2net")
    message = str(info.value)
    assert "staging models pull u2net" in message
    assert "https://github.com/danielgatis/rembg/releases" in message
    assert str(tmp_path / "u2net.onnx") in message


def test_unknown_model_lists_known_ones(tmp_path):
    with pytest.raises(UnknownNameError, match="u2netp"):
        ModelStore([tmp_path]).path("no-such-model")


def test_pull_downloads_and_verifies(tmp_path, local_model):
    spec, payload = local_model
    store = ModelStore([tmp_path / "models"])
    path = store.pull(spec.name, progress=False)
    assert path == tmp_path / "models" / "tiny.onnx"
    assert path.read_bytes() == payload
    assert store.status(spec.name, verify=True).checksum_ok is True
    assert not list((tmp_path / "models").glob("*.part"))


def test_pull_rejects_bad_checksum_and_leaves_nothing(tmp_path, local_model):
    spec, _ = local_model
    REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "checksums": {"tiny.onnx": "md5:00"}})
    store = ModelStore([tmp_path / "models"])
    with pytest.raises(StagingError, match="Checksum mismatch"):
        store.pull(spec.name, progress=False)
    assert list((tmp_path / "models").iterdir()) == [tmp_path / "models" / ".tiny-test-model.lock"]


def test_path_downloads_only_when_allowed(tmp_path, local_model):
    spec, _ = local_model
    with pytest.raises(ModelNotAvailableError):
        ModelStore([tmp_path]).path(spec.name)
    assert ModelStore([tmp_path], allow_download=True).path(spec.name).is_file()


def test_offline_never_downloads(tmp_path, local_model, monkeypatch):
    spec, _ = local_model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings(models_dir=str(tmp_path), allow_download=True)
    assert settings.is_offline
    store = ModelStore(settings.model_dirs, offline=settings.is_offline, allow_download=True)
    with pytest.raises(ModelNotAvailableError, match="Offline mode is on"):
        store.path(spec.name)
    with pytest.raises(ModelNotAvailableError, match="offline"):
        store.pull(spec.name)


def test_unreachable_url_fails_fast_with_instructions(tmp_path, local_model):
    spec, _ = local_model
    REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "source": (tmp_path / "gone").as_uri()})
    with pytest.raises(ModelNotAvailableError, match="download it yourself"):
        ModelStore([tmp_path / "m"]).pull(spec.name, progress=False)


def test_checksum_formats(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    assert checksum_matches(f, "md5:900150983cd24fb0d6963f7d28e17f72")
    assert checksum_matches(f, "sha256:" + hashlib.sha256(b"abc").hexdigest())
    assert not checksum_matches(f, "md5:0")


def test_models_dir_search_path(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("STAGING_MODELS_DIR", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert Settings().model_dirs == [tmp_path / "a", tmp_path / "b"]


def test_checksum_prefix_as_in_torch_hub_file_names(tmp_path):
    f = tmp_path / "w.pth"
    f.write_bytes(b"abc")
    full = hashlib.sha256(b"abc").hexdigest()
    assert checksum_matches(f, "sha256:" + full[:8])  # torchvision's name-<8 hex>.pth
    assert not checksum_matches(f, "sha256:" + ("0" * 8 if full[0] != "0" else "1" * 8))
    assert not checksum_matches(f, "sha256:" + full[:4])  # too short to be trusted as a prefix
