"""Folders: the image files a batch command picks up."""

from __future__ import annotations

import os
from pathlib import Path

from staging.errors import ImageLoadError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
"""What :func:`list_images` picks up (compared case-insensitively)."""


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted, for batch commands.

    Matches :data:`IMAGE_EXTENSIONS` case-insensitively and skips hidden entries (names
    starting with ``.``), including everything inside hidden folders (``.git``, macOS ``._``
    resource forks, ``.ipynb_checkpoints``). Symlinked folders are not followed, so a link
    loop cannot hang a batch. A single image file is accepted and returned as a one-item list,
    so the CLI can take "a file or a folder".
    """
    root = Path(os.fspath(folder))
    if root.is_file():
        if root.suffix.lower() in IMAGE_EXTENSIONS:
            return [root]
        raise ImageLoadError(f"'{root}' is not an image file (expected one of {_ext_list()}).")
    if not root.is_dir():
        raise ImageLoadError(f"No such folder: '{root}'.")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if not recursive:
            dirnames[:] = []
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found)


def _ext_list() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))
