"""Where the creative service keeps its images: a local folder (the default, ``<root>``) or any
fsspec URL, such as ``s3://bucket/prefix`` for S3 and S3-compatible servers (``pip install
s3fs``; endpoint and keys from the usual ``AWS_*`` variables, e.g. ``AWS_ENDPOINT_URL``).

Names are relative (``products/chair-1.png``) so the metadata does not depend on where the
images live: with PostgreSQL for the metadata and S3 for the images, the service and workers on
other machines share everything and keep nothing of their own but caches.
"""

from __future__ import annotations

import io
import posixpath
from pathlib import Path

import numpy as np

from staging.errors import StagingError
from staging.io import atomic_write, to_pil


class Storage:
    """Read and write named images under ``url`` (a folder or an fsspec URL)."""

    def __init__(self, url: str | Path):
        import fsspec

        try:
            self.fs, self.base = fsspec.core.url_to_fs(str(url))
        except (ImportError, ValueError) as exc:  # no s3fs, unknown protocol
            raise StagingError(f"Cannot store images at {url!r}: {exc}") from exc
        self.url = str(url)
        self.local = "file" in self.fs.protocol
        if self.local:
            self.fs.makedirs(self.base, exist_ok=True)

    def _path(self, name: str) -> str:
        return posixpath.join(self.base, name)  # an absolute name (older rows) stays as it is

    def local_path(self, name: str) -> Path | None:
        """The file behind ``name`` when the storage is a local folder (the engine reads it in
        place), else None."""
        return Path(self._path(name)) if self.local else None

    def write(self, name: str, data: bytes) -> str:
        """Store ``data`` as ``name``, whole or not at all, and return ``name``. A local file
        is written beside and renamed over (:func:`staging.io.atomic_write`); an object
        store's PUT is atomic already."""
        path = self._path(name)
        if self.local:
            atomic_write(path, lambda fh: fh.write(data), fsync=False)
        else:
            self.fs.pipe_file(path, data)
        return name

    def write_png(self, name: str, image: np.ndarray) -> str:
        buffer = io.BytesIO()
        to_pil(image).save(buffer, format="PNG", compress_level=1)
        return self.write(name, buffer.getvalue())

    def source(self, name: str) -> Path | bytes:
        """``name`` as the engine reads it: the local file itself, or the bytes fetched from
        an object store."""
        return self.local_path(name) or self.read(name)

    def read(self, name: str) -> bytes:
        """The bytes of ``name``; FileNotFoundError when it is not there."""
        return self.fs.cat_file(self._path(name))
