"""``Staged``: one staged ad image, whatever mode made it.

Every staging mode (copy-paste, vanilla, prompt) returns a list of :class:`Staged`, so the app's
Compare tab, the CLI and batch code treat them alike. Convention, as everywhere in the package:
images are RGB ``uint8`` arrays ``(H, W, 3)``; the product's alpha is ``float32`` ``(H, W)`` in
``[0, 1]``; masks are ``bool`` ``(H, W)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class Staged:
    """A staged image plus where it came from and how faithful the product stayed.

    Attributes:
        image: the staged ad image, RGB uint8 ``(H, W, 3)``.
        alpha: the product's coverage in ``image`` (float32 ``(H, W)``, 1 = product).
        mode: ``copy-paste``, ``vanilla`` or ``prompt``.
        ssim: SSIM of the product region against the input product (1.0 when the product was
            pasted untouched; lower when harmonised or regenerated).
        source: provenance: for copy-paste the catalog id, path, category and retrieval score;
            for diffusion the model, prompt and seed.
        scores: any further measurements (e.g. ``object_expansion``, ``placement_fill``).
    """

    image: np.ndarray
    alpha: np.ndarray
    mode: str
    ssim: float = 1.0
    source: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """The product mask in the staged image (bool ``(H, W)``, ``alpha >= 0.5``)."""
        return self.alpha >= 0.5

    @property
    def pil(self) -> Image.Image:
        return Image.fromarray(self.image)

    def save(self, path: str | os.PathLike, quality: int = 92) -> Path:
        """Write the image (PNG, JPEG or WebP by extension), atomically."""
        from staging.io import save_image

        return save_image(path, self.image, quality=quality)

    @property
    def models(self) -> dict[str, Any]:
        """The models its provenance names (segmenter, inpainter, generator backend and model):
        what made this image, for manifests and caches."""
        keys = ("segment_backend", "inpaint_backend", "backend", "model")
        return {key: self.source[key] for key in keys if self.source.get(key)}

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (no pixels): mode, size, SSIM, provenance and scores."""
        h, w = self.image.shape[:2]
        return {
            "mode": self.mode,
            "width": w,
            "height": h,
            "ssim": round(float(self.ssim), 4),
            "source": {k: v for k, v in self.source.items()},
            "scores": {k: round(float(v), 4) for k, v in self.scores.items()},
        }


@dataclass
class Candidates:
    """Every mode's candidates for one product (:meth:`StagingEngine.stage_candidates`), for a
    side-by-side grid: the results in mode order, and the modes that could not run with the
    reason in words (a grid with two modes and a note beats an error for all three).

    Attributes:
        results: copy-paste results first, then vanilla, then prompt.
        skipped: mode → why it made nothing (e.g. no catalog index given).
    """

    results: list[Staged] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def modes(self) -> list[str]:
        """The modes that made at least one result, in grid order."""
        return list(dict.fromkeys(item.mode for item in self.results))
