"""Finding model files in the models directories, verifying them and pulling them.

Every download is written next to its target and renamed only once its checksum matched, so a
killed or corrupt download never leaves a file a later run would mistake for the model.

Layout inside a models directory: a single-file model lives at ``<dir>/<file>`` (so a folder of
loose ``.onnx`` files, like rembg's, works as it is); a multi-file model (a diffusers repo) lives
at ``<dir>/<name>/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from staging.errors import ModelNotAvailableError
from staging.io.atomic import atomic_path
from staging.models.registry import ModelSpec, get_spec
from staging.models.sources import HfRepo, Source, SourceError


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MIN_PREFIX_HEX = 8
"""A shorter expected digest is a prefix of the real one (torch.hub's file-name convention)."""


def checksum_matches(path: Path, expected: str) -> bool:
    """``expected`` is ``"sha256:<hex>"`` or ``"md5:<hex>"`` (pooch's convention). A digest of at
    least :data:`MIN_PREFIX_HEX` digits but shorter than the algorithm's is matched as a prefix,
    as torch.hub does for ``name-<sha256 prefix>.pth`` files."""
    algorithm, _, hexdigest = expected.partition(":")
    hexdigest = hexdigest.lower()
    actual = _hash_file(path, algorithm)
    if MIN_PREFIX_HEX <= len(hexdigest) < len(actual):
        return actual.startswith(hexdigest)
    return actual == hexdigest


@dataclass
class ModelStatus:
    name: str
    present: bool
    path: Path | None
    checksum_ok: bool | None  # None: not present or nothing to check against


class ModelStore:
    """Finds model files on disk and, when allowed, downloads them."""

    def __init__(self, dirs: list[Path], offline: bool = False, allow_download: bool = False):
        if not dirs:
            raise ValueError("at least one models directory is needed")
        self.dirs = [Path(d) for d in dirs]
        self.offline = offline
        self.allow_download = allow_download

    # -- lookup ---------------------------------------------------------------------------------
    def _location(self, spec: ModelSpec, root: Path) -> Path:
        return root / spec.files[0] if spec.single_file else root / spec.name

    def find(self, name: str) -> Path | None:
        """Where the model's files are, or None. Never touches the network."""
        spec = get_spec(name)
        for root in self.dirs:
            location = self._location(spec, root)
            if spec.single_file:
                if location.is_file():
                    return location
            elif all((location / f).exists() for f in spec.files):
                return location
        return None

    def status(self, name: str, verify: bool = False) -> ModelStatus:
        spec = get_spec(name)
        path = self.find(name)
        checksum_ok = None
        if path is not None and verify and spec.checksums:
            checksum_ok = all(
                checksum_matches(path if spec.single_file else path / f, expected)
                for f, expected in spec.checksums.items()
            )
        return ModelStatus(name, path is not None, path, checksum_ok)

    def path(self, name: str) -> Path:
        """The model's file (single-file models) or folder; fetches it only if allowed.

        Raises :class:`ModelNotAvailableError` naming the command to run when it is missing.
        """
        found = self.find(name)
        if found is not None:
            return found
        if self.allow_download and not self.offline:
            return self.pull(name)
        raise ModelNotAvailableError(self.missing_message(name))

    def missing_message(self, name: str) -> str:
        spec = get_spec(name)
        where = self.dirs[0] / (spec.files[0] if spec.single_file else spec.name)
        searched = ", ".join(str(d) for d in self.dirs)
        msg = (
            f"Model {name!r} ({spec.description}, {spec.size_mb:.0f} MB, licence {spec.licence}) "
            f"is not in the models directory ({searched}). Fetch it with:\n"
            f"    staging models pull {name}\n"
            f"or download {spec.url} yourself and save it as {where}."
        )
        if self.offline:
            msg += "\n(Offline mode is on: HF_HUB_OFFLINE or STAGING_OFFLINE forbids downloads.)"
        return msg

    # -- download -------------------------------------------------------------------------------
    def pull(self, name: str, force: bool = False, progress: bool = True) -> Path:
        """Fetch a model into the first models directory, trying its sources in order.

        Each source's bytes are verified against the registry's checksum before they are moved
        into place; a source that fails (unreachable, client missing, wrong bytes) is reported
        and the next one is tried.
        """
        spec = get_spec(name)
        if not force:
            found = self.find(name)
            if found is not None:
                return found
        if self.offline:
            raise ModelNotAvailableError(
                f"Cannot download {name!r}: offline mode is on (HF_HUB_OFFLINE or "
                f"STAGING_OFFLINE). Unset it, or copy the files from {spec.url} into "
                f"{self.dirs[0]}."
            )
        root = self.dirs[0]
        root.mkdir(parents=True, exist_ok=True)
        target = self._location(spec, root)
        failures: list[str] = []
        with FileLock(str(root / f".{spec.name}.lock")):
            found = None if force else self.find(name)
            if found is not None:  # another process pulled it meanwhile
                return found
            for source in spec.sources:
                try:
                    if isinstance(source, HfRepo):
                        source.fetch_folder(target, spec.files)
                    else:
                        self._pull_file(spec, source, target, progress)
                    return target
                except SourceError as exc:
                    failures.append(f"  - {source.describe()}: {exc}")
        tried = "\n".join(failures)
        raise ModelNotAvailableError(
            f"Could not fetch {name!r} ({spec.size_mb:.0f} MB) from any of its sources:\n{tried}\n"
            f"Check the network (or install the client named above), or download it yourself "
            f"and save it as {target}."
        )

    def _pull_file(self, spec: ModelSpec, source: Source, target: Path, progress: bool) -> None:
        # Written next to the target and renamed once verified (staging.io.atomic_path): a
        # killed or corrupt download never leaves a file a later run would take for the model.
        with atomic_path(target, fsync=False) as part:
            source.fetch(part, spec.name, progress)
            expected = spec.checksums.get(spec.files[0])
            if expected and not checksum_matches(part, expected):
                raise SourceError(
                    f"checksum mismatch (expected {expected}); the file was discarded"
                )
