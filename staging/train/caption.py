"""Captions for training images: BLIP (Li et al. 2022), as seed 003 captions its catalog for
fine-tuning, when ``blip-captioning`` is in the models directory (``staging models pull
blip-captioning``); else the dataset falls back to the catalog's own text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from staging.errors import StagingError


class BlipCaptioner:
    """``captioner(rgb) -> str``; loads the model folder once, from disk only."""

    def __init__(self, folder: str | Path, device: str = "cpu", max_words: int = 30):
        try:
            import torch
            from transformers import BlipForConditionalGeneration, BlipProcessor
        except ImportError as exc:
            raise StagingError(
                "BLIP captions need torch and transformers: pip install torch transformers"
            ) from exc
        self.torch = torch
        self.processor = BlipProcessor.from_pretrained(str(folder), local_files_only=True)
        model = BlipForConditionalGeneration.from_pretrained(str(folder), local_files_only=True)
        self.model = model.to(device).eval()
        self.device = device
        self.max_words = max_words

    def __call__(self, rgb: np.ndarray) -> str:
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(rgb), return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=self.max_words)
        return self.processor.decode(ids[0], skip_special_tokens=True).strip()
