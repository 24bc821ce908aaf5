"""Folders of models trained by ``staging train`` (the user's own, so no registry entry):
``config.json`` naming the format, and one ``<network>.safetensors`` per network, each file
written beside and renamed into place so a folder is never half-written. Used by the
``edgeconnect`` inpainter and the ``pix2pix`` generator, and by their trainers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from staging.errors import ModelNotAvailableError, StagingError


def save_folder(folder: Path, fmt: str, networks: dict[str, Any], config: dict[str, Any]) -> None:
    """Write each torch module of ``networks`` as ``<name>.safetensors`` and ``config.json``
    (``{"format": fmt, "version": 1, **config}``)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for name, network in networks.items():
        state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        temporary = folder / f".{name}.safetensors.tmp"
        save_file(state, str(temporary))
        temporary.replace(folder / f"{name}.safetensors")
    temporary = folder / ".config.json.tmp"
    temporary.write_text(json.dumps({"format": fmt, "version": 1, **config}, indent=2))
    temporary.replace(folder / "config.json")


def read_folder(
    folder: str | Path, fmt: str, names: tuple[str, ...], what: str, train: str
) -> tuple[dict[str, Any], dict[str, dict]]:
    """``(config, {name: state dict})`` of a model folder in format ``fmt``; a readable
    error when it is not one (``what``: "an EdgeConnect", ``train``: the command)."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise StagingError(
            f"{folder} is not {what} model folder (no config.json). Train one with `{train}`."
        )
    config = json.loads(path.read_text())
    if config.get("format") != fmt:
        raise StagingError(f"{path} is not a {fmt} model (format {config.get('format')!r}).")
    from safetensors.torch import load_file

    states = {}
    for name in names:
        weights = folder / f"{name}.safetensors"
        if not weights.is_file():
            raise StagingError(f"{folder} has no {weights.name}: the model folder is incomplete.")
        states[name] = load_file(str(weights))
    return config, states


def find_folder(
    runtime, name: str, folder: str | None, what: str, train: str, flag: str, also: str = ""
) -> Path:
    """``folder``, else the folder called ``name`` in a models directory; else an error that
    says how to train one (``train``: the command) or name one (``flag``), then ``also``."""
    if folder is not None:
        return Path(folder).expanduser()
    found = [d / name for d in runtime.store.dirs if (d / name).is_dir()]
    if found:
        return found[0]
    where = runtime.store.dirs[0] / name
    raise ModelNotAvailableError(
        f"No trained {what} at {where}. Train one on your catalog with:\n"
        f"    staging dataset CATALOG --out DATA\n"
        f"    {train} DATA --out {where}\n"
        f"or name a model folder: {flag} {name}:/path/to/model{also}"
    )
