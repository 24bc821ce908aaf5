"""Atomic writes: a temporary sibling renamed over the target, so readers and a crash see the
old file or the new one, never half a file. Every writer in the library goes through here."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike, *, fsync: bool = True, suffix: str | None = None
) -> Iterator[Path]:
    """A temporary sibling of ``target`` to write by name; renamed over ``target`` when the
    block ends without an error, deleted when it raises.

    The sibling is hidden (``.NAME.<random>.tmp``) and in the same folder, so the rename is
    atomic: readers, and a crash at any moment, see the old file or the new one, never half a
    file. ``fsync`` flushes the data to disk before the rename (a power cut then keeps the
    new file whole, too); caches that only lose a recompute skip it. ``suffix`` (``".mp4"``) is
    put last (``.STEM.<random>.tmp.mp4``), for writers that pick a format from the name.
    """
    target = Path(os.fspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    if suffix is not None:
        tmp = target.with_name(f".{target.stem}.{token}.tmp{suffix}")
    else:
        tmp = target.with_name(f".{target.name}.{token}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(target: str | os.PathLike, write: Any, *, fsync: bool = True) -> Path:
    """Run ``write(file)`` on a new binary file beside ``target``, then rename it into place
    (see :func:`atomic_path`). Returns ``target`` as a Path."""
    target = Path(os.fspath(target))
    with atomic_path(target, fsync=False) as tmp:
        # os.open with 0o666 lets the umask decide permissions, as for a normal new file
        # (tempfile.mkstemp would leave the result readable by its owner only).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(tmp, flags, 0o666), "wb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return target
