"""Shared bits of the torch-based embedders (``inception_v3``, ``clip``): lazy imports with
clear install messages, device choice, and batched inference on product crops."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from staging.embed.base import WHITE, Embedder, l2_normalize, product_crop
from staging.errors import StagingError


def require(module: str, install: str, what: str):
    """Import ``module`` or raise a :class:`StagingError` naming the pip command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StagingError(
            f"The {what} embedder needs the {module.split('.')[0]} package, which is not "
            f"installed. Install it with:\n    pip install {install}\n"
            "or use the weights-free default (--embedder handcrafted)."
        ) from exc


def torch_device(runtime) -> str:
    device = getattr(runtime, "device", "cpu") or "cpu"
    return device if device in ("cpu", "mps") or device.startswith("cuda") else "cpu"


class TorchImageEmbedder(Embedder):
    """A torch module mapping ``(N, 3, S, S)`` normalised RGB to ``(N, dim)`` features."""

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
    ):
        self.torch = require("torch", "torch", self.name)
        self.module = module.eval().to(device)
        self.dim = int(dim)
        self.size = int(size)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.fill = fill

    def preprocess(self, image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        crop = product_crop(image, mask, fill=self.fill)
        interp = cv2.INTER_AREA if crop.image.shape[0] > self.size else cv2.INTER_CUBIC
        rgb = cv2.resize(crop.image, (self.size, self.size), interpolation=interp)
        x = (rgb.astype(np.float32) / 255.0 - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def forward(self, batch):
        return self.module(batch)

    def embed_batch(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None] | None = None,
    ) -> np.ndarray:
        masks = [None] * len(images) if masks is None else list(masks)
        if len(masks) != len(images):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        torch = self.torch
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                idx = range(start, min(start + self.batch_size, len(images)))
                batch = np.stack([self.preprocess(images[i], masks[i]) for i in idx])
                feats = self.forward(torch.from_numpy(batch).to(self.device))
                out[start : start + len(idx)] = feats.float().cpu().numpy().reshape(len(idx), -1)
        return l2_normalize(out)
