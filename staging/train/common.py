"""What the trainers share: the held-apart split, crops, tensors, checkpoints, the GAN loss and
the run's budget, progress bar and summary."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def held_apart(records: list[dict], count: int) -> tuple[list[dict], list[dict]]:
    """``(train, held)``: ``count`` records held apart by a hash of their id, so the split is
    the same for every run and every trainer, and stays put when records are added."""
    order = sorted(records, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    if len(order) <= count:
        raise ValueError(f"{len(records)} records: need more than the {count} held apart")
    return order[count:], order[:count]


def read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crop(images: list[np.ndarray], size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """The same square of each image (all of one size): the shorter side resized to
    ``size``, then a random ``size``² crop flipped half the time (``rng``), or the centre
    crop (``rng`` None: validation)."""
    h0, w0 = images[0].shape[:2]
    scale = size / min(h0, w0)
    w, h = max(size, round(w0 * scale)), max(size, round(h0 * scale))
    resized = [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images]
    if rng is None:
        y, x, flip = (h - size) // 2, (w - size) // 2, False
    else:
        y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        flip = rng.random() < 0.5
    out = [im[y : y + size, x : x + size] for im in resized]
    return [np.ascontiguousarray(im[:, ::-1] if flip else im) for im in out]


def tensor(arrays: list[np.ndarray], device):
    """N×C×H×W float32 from H×W or H×W×C arrays."""
    import torch

    stacked = np.stack([a[..., None] if a.ndim == 2 else a for a in arrays]).astype(np.float32)
    return torch.from_numpy(stacked.transpose(0, 3, 1, 2).copy()).to(device)


def save_checkpoint(path: Path, step: int, options, nets: dict, optimisers: dict, scaler) -> None:
    """Everything needed to resume, written whole (beside, then renamed over)."""
    save_whole(
        {"step": step, "options": asdict(options),
         "nets": {k: v.state_dict() for k, v in nets.items()},
         "optimisers": {k: v.state_dict() for k, v in optimisers.items()},
         "scaler": scaler.state_dict()},
        path,
    )  # fmt: skip


def save_whole(state: dict, path: Path) -> None:
    """``torch.save`` of ``state`` through a temporary sibling renamed over ``path``, so a run
    killed while saving keeps its previous checkpoint."""
    import torch

    from staging.io import atomic_path

    with atomic_path(path, fsync=False) as temporary:
        torch.save(state, temporary)


def gan_start(data: str | Path, options) -> tuple[Any, bool, list[dict], list[dict]]:
    """What a GAN run begins with: ``(device, fp16 autocast or not, train, held)``, the records
    of the dataset ``data`` split by :func:`held_apart`; torch is seeded with
    ``options.seed`` here, before the networks are built, so their first weights follow it."""
    import torch

    from staging.train.dataset import read_metadata

    device = torch.device(options.device)
    train, held = held_apart(read_metadata(data), options.validation)
    torch.manual_seed(options.seed)
    return device, device.type == "cuda", train, held


def load_checkpoint(
    path: Path, options, nets: dict, optimisers: dict, scaler, device, same: tuple[str, ...],
    fresh: bool = False,
) -> int:  # fmt: skip
    """Resume from ``path``: load the networks, optimisers and scaler, return the step (0, and
    nothing loaded, when there is no checkpoint or the run is ``fresh``). The options named in
    ``same`` (the networks' shape, the seed) must match the checkpoint's: a run resumed under
    another seed would be neither run."""
    import torch

    if fresh or not path.is_file():
        return 0

    state = torch.load(path, map_location=device, weights_only=False)
    trained: dict[str, Any] = state["options"]
    if differing := [k for k in same if trained.get(k, 0) != getattr(options, k)]:
        was = ", ".join(f"{k} {trained[k]}" for k in differing)
        raise ValueError(f"{path} was trained with {was}; pass the same, or --fresh to start over")
    for name in nets:
        nets[name].load_state_dict(state["nets"][name])
        optimisers[name].load_state_dict(state["optimisers"][name])
    scaler.load_state_dict(state["scaler"])
    return int(state["step"])


def adversarial(logits, real: bool):
    """The GAN loss of discriminator ``logits`` against all-real or all-fake targets, in fp32
    whatever precision autocast computed the logits in."""
    import torch
    from torch.nn import functional as F  # noqa: N812 - PyTorch's own convention

    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


def step_bar(name: str, options, step: int, progress: bool):
    """The progress bar of ``staging train NAME``: ``options.steps`` steps, resumed at
    ``step``; hidden unless ``progress``."""
    from tqdm import tqdm

    return tqdm(total=options.steps, initial=step, desc=f"train {name}", unit="step",
                disable=not progress)  # fmt: skip


def out_of_time(options, started: float) -> bool:
    """Whether a run begun at ``started`` (:func:`time.monotonic`) has spent its budget of
    ``options.minutes`` (None: no budget, the run goes on to ``options.steps``)."""
    return options.minutes is not None and time.monotonic() - started > 60 * options.minutes


def finish(out: Path, summary: dict[str, Any], history: Any) -> dict[str, Any]:
    """Write a run's ``summary`` to ``out/training.json`` and return it with this run's
    per-step ``history`` (kept out of the file: it is only this run's, not the model's)."""
    (out / "training.json").write_text(json.dumps(summary, indent=2))
    return summary | {"history": history}
