"""Shared bits of the torch-based embedders (``inception_v3``, ``clip``): lazy imports with
clear install messages, device choice, and batched inference on product crops."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import cv2
import numpy as np

from staging.embed.base import WHITE, Embedder, product_crop
from staging.errors import StagingError


def require(module: str, install: str, what: str, hint: str | None = None):
    """Import ``module`` or raise a :class:`StagingError` naming the pip command.

    ``what`` names the feature that needs it (an embedder name, ``clip-score``); ``hint`` is an
    alternative to offer (default: the weights-free embedder).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        subject = f"The {what} embedder" if hint is None else what
        if hint is None:
            hint = "or use the weights-free default (--embedder handcrafted)."
        raise StagingError(
            f"{subject} needs the {module.split('.')[0]} package, which is not "
            f"installed (or does not import: {exc}). Install it with:\n"
            f"    pip install {install}\n" + hint
        ) from exc


@contextmanager
def checkpoint_errors(what: str, folder, model: str, install: str):
    """Turn the many ways a transformers checkpoint fails to load (OSError, ValueError, ...)
    into one :class:`StagingError` that names the fix: reinstall, or pull the files again."""
    try:
        yield
    except StagingError:
        raise
    except ImportError as exc:
        raise StagingError(
            f"{what} could not import what it needs: {exc}\nInstall it with:\n"
            f"    pip install {install}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - transformers raises OSError/ValueError/...
        raise StagingError(
            f"Could not load the checkpoint in {folder}: {exc}\n"
            f"The files may be damaged or incomplete; fetch them again with:\n"
            f"    staging models pull {model} --force"
        ) from exc


def missing_weights(info: dict) -> list[str]:
    """The weights ``from_pretrained(..., output_loading_info=True)`` left missing or
    mis-shaped: transformers loads such a checkpoint with random weights and only warns, so
    callers turn a non-empty list into an error that says to pull the files again."""
    mismatched = info.get("mismatched_keys") or []
    return list(info.get("missing_keys") or []) + [
        str(m[0] if isinstance(m, (tuple, list)) else m) for m in mismatched
    ]


def torch_device(runtime) -> str:
    """The runtime's device as torch names it; an unusable CUDA/MPS device falls back to CPU."""
    device = getattr(runtime, "device", "cpu") or "cpu"
    if device.startswith("cuda"):
        import torch

        return device if torch.cuda.is_available() else "cpu"
    if device == "mps":
        import torch

        mps = getattr(torch.backends, "mps", None)
        return device if mps is not None and mps.is_available() else "cpu"
    return "cpu"


class TorchImageEmbedder(Embedder):
    """A torch module mapping ``(N, 3, S, S)`` normalised RGB to ``(N, dim)`` features.

    Every image is first reduced to its masked, squared product crop on :attr:`fill`
    (:func:`~staging.embed.base.product_crop`); :meth:`preprocess` turns a list of crops into
    the network's input. Inference runs in batches of :attr:`batch_size` under
    ``torch.inference_mode``, in half precision when ``fp16`` and the device is CUDA.
    """

    def __init__(
        self,
        module,
        dim: int,
        size: int,
        mean,
        std,
        device: str = "cpu",
        batch_size: int = 16,
        fill: tuple[int, int, int] = WHITE,
        fp16: bool = False,
    ):
        self.torch = require("torch", "torch", self.name)
        self.device = device
        self.dtype = (
            self.torch.float16 if fp16 and device.startswith("cuda") else self.torch.float32
        )
        self.module = module.eval().to(device=device, dtype=self.dtype)
        self.dim = int(dim)
        self.size = int(size)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.batch_size = max(1, int(batch_size))
        self.fill = fill

    def crop(self, image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """The product on :attr:`fill`, squared (RGB uint8)."""
        return product_crop(image, mask, fill=self.fill).image

    def preprocess(self, crops: Sequence[np.ndarray]):
        """Square RGB uint8 crops -> ``(N, 3, size, size)`` float32 tensor (mean/std)."""
        out = np.empty((len(crops), 3, self.size, self.size), dtype=np.float32)
        for i, crop in enumerate(crops):
            interp = cv2.INTER_AREA if crop.shape[0] > self.size else cv2.INTER_CUBIC
            rgb = cv2.resize(crop, (self.size, self.size), interpolation=interp)
            out[i] = ((rgb.astype(np.float32) / 255.0 - self.mean) / self.std).transpose(2, 0, 1)
        return self.torch.from_numpy(out)

    def forward(self, batch):
        return self.module(batch)

    def _embed_many(self, images: Sequence[np.ndarray], masks: list) -> np.ndarray:
        """The crops in batches of :attr:`batch_size` through :meth:`forward`, in inference
        mode."""
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        torch = self.torch
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                stop = min(start + self.batch_size, len(images))
                crops = [self.crop(images[i], masks[i]) for i in range(start, stop)]
                batch = self.preprocess(crops).to(device=self.device, dtype=self.dtype)
                feats = self.forward(batch)
                out[start:stop] = feats.float().cpu().numpy().reshape(stop - start, -1)
        return out
