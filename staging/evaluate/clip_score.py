"""``staging eval clip-score``: how well generated backgrounds match their prompts, by CLIP.

AdBooster (Shilova et al. 2023) measures personalisation by the CLIP similarity between a
creative and the text describing the user's interests: a personalised background should sit
closer to "a breezy coastal interior" in CLIP's joint space than the plain product shot does.
This module computes that number for a folder of images and their prompts:

* ``cosine`` -- cosine similarity of CLIP's projected image and text embeddings, in [-1, 1];
* ``clip_score`` -- ``100 * max(cosine, 0)`` (Hessel et al. 2021 without their 2.5 rescale,
  the convention of torchmetrics), mean over images;
* ``top1_match`` -- with several distinct prompts: the share of images whose own prompt scores
  highest among all prompts. It does not depend on CLIP's absolute scale (ViT-B/32 puts
  matching pairs near 0.3), so it reads more easily across models.

The model is the registry entry ``clip-vit-base-patch32`` (a full ``CLIPModel``: both towers),
loaded from the models directory with ``local_files_only``; it is never downloaded here. Scoring
text also needs the tokenizer files (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from staging.embed.clip import INSTALL
from staging.errors import StagingError

MODEL = "clip-vit-base-patch32"
HF_REPO = "https://huggingface.co/openai/clip-vit-base-patch32"
TOKENIZER_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))
"""Either set lets transformers build the CLIP tokenizer."""


def _require(module: str):
    from staging.embed._torch import require

    return require(module, INSTALL, "clip-score", hint="")


def clip_score(cosine: np.ndarray | float) -> np.ndarray | float:
    """``100 * max(cosine, 0)``: the CLIP score convention of torchmetrics."""
    return np.maximum(np.asarray(cosine, dtype=np.float64), 0.0) * 100.0


class ClipScorer:
    """A loaded ``CLIPModel`` with its tokenizer and image processor.

    Embeddings are computed through the towers and projections directly (``vision_model`` ->
    ``visual_projection``, ``text_model`` -> ``text_projection``), which is what
    ``CLIPModel.forward`` does, without depending on the return type of the
    ``get_*_features`` helpers, which changed in transformers 5.
    """

    def __init__(self, model, tokenizer, processor, device: str = "cpu", batch_size: int = 16):
        self.torch = _require("torch")
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.processor = processor
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.truncated = 0  # prompts cut at the text encoder's limit, since creation

    @property
    def max_tokens(self) -> int:
        """The text encoder's context length (77 for OpenAI's CLIP)."""
        return int(self.model.config.text_config.max_position_embeddings)

    def _normalize(self, feats) -> np.ndarray:
        out = feats.float().cpu().numpy().astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def image_embeddings(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-norm ``(N, dim)`` embeddings of RGB uint8 images (whole frames)."""
        torch = self.torch
        dim = int(self.model.config.projection_dim)
        out = np.zeros((len(images), dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = list(images[start : start + self.batch_size])
                pixels = self.processor(
                    images=batch, return_tensors="pt", input_data_format="channels_last"
                )["pixel_values"].to(self.device)
                pooled = self.model.vision_model(pixel_values=pixels).pooler_output
                out[start : start + len(batch)] = self._normalize(
                    self.model.visual_projection(pooled)
                )
        return out

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm ``(M, dim)`` embeddings; prompts longer than :attr:`max_tokens` are cut
        there (as Stable Diffusion's own text encoder does) and counted in :attr:`truncated`."""
        torch = self.torch
        dim = int(self.model.config.projection_dim)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        limit = self.max_tokens
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = [str(t) for t in texts[start : start + self.batch_size]]
                full = self.tokenizer(batch, truncation=False)["input_ids"]
                self.truncated += sum(len(ids) > limit for ids in full)
                tokens = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=limit, return_tensors="pt"
                )
                pooled = self.model.text_model(
                    input_ids=tokens["input_ids"].to(self.device),
                    attention_mask=tokens["attention_mask"].to(self.device),
                ).pooler_output
                out[start : start + len(batch)] = self._normalize(
                    self.model.text_projection(pooled)
                )
        return out

    def similarity(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> np.ndarray:
        """``(N images, M texts)`` cosine similarities."""
        if not len(images) or not len(texts):
            return np.zeros((len(images), len(texts)), dtype=np.float32)
        return self.image_embeddings(images) @ self.text_embeddings(texts).T

    def score(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each image with its own text (``len(images) == len(texts)``)."""
        if len(images) != len(texts):
            raise StagingError(f"{len(images)} images but {len(texts)} prompts to pair them with.")
        if not len(images):
            return np.zeros(0, dtype=np.float32)
        unique = list(dict.fromkeys(texts))  # embed each distinct prompt once
        sims = self.similarity(images, unique)
        cols = np.array([unique.index(t) for t in texts])
        return sims[np.arange(len(images)), cols]


def _tokenizer_present(folder: Path) -> bool:
    return any(all((folder / f).is_file() for f in names) for names in TOKENIZER_SETS)


def load_clip_scorer(store, device: str = "cpu", model: str = MODEL) -> ClipScorer:
    """Load registry model ``model`` (a full CLIP checkpoint) from the models directory.

    Raises :class:`StagingError` naming ``pip install`` when torch/transformers are missing,
    :class:`~staging.errors.ModelNotAvailableError` naming ``staging models pull <model>`` when
    the checkpoint is absent, and a :class:`StagingError` naming the missing files when the
    tokenizer or the text tower is not there (a vision-only checkpoint cannot score text).
    """
    _require("torch")
    transformers = _require("transformers")
    folder = Path(store.path(model))  # ModelNotAvailableError names the pull command
    if not _tokenizer_present(folder):
        raise StagingError(
            f"The CLIP checkpoint in {folder} has no tokenizer, which clip-score needs to read "
            f"prompts (tokenizer.json, or vocab.json + merges.txt). Fetch it again with "
            f"`staging models pull {model} --force`, or download tokenizer.json and "
            f"tokenizer_config.json from "
            f"{HF_REPO} into {folder}."
        )
    from staging.embed._torch import checkpoint_errors, missing_weights
    from staging.embed.clip import _processor_class

    logging = transformers.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()  # a progress bar for a local load is noise beside --json
    try:
        with checkpoint_errors("clip-score", folder, model, INSTALL):
            clip, info = transformers.CLIPModel.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True
            )
            processor = _processor_class(transformers).from_pretrained(
                str(folder), local_files_only=True
            )
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    missing = missing_weights(info)
    if missing:
        raise StagingError(
            f"The CLIP checkpoint in {folder} lacks (or mis-shapes) {len(missing)} weights, e.g. "
            f"{', '.join(sorted(missing)[:3])}; clip-score needs both towers of a full CLIPModel. "
            f"Fetch it again with:\n    staging models pull {model} --force"
        )
    return ClipScorer(clip, tokenizer, processor, device=device)


# -- pairing images with prompts ----------------------------------------------------------------


def _keys(path: Path, root: Path) -> list[str]:
    keys = [path.name, path.stem]
    try:
        rel = path.relative_to(root)
        keys = [rel.as_posix(), rel.with_suffix("").as_posix(), *keys]
    except ValueError:
        pass
    return keys


def pair_prompts(images: Sequence[Path], root: Path, file: str | os.PathLike) -> list[str]:
    """The prompt of each image, from ``file``:

    * ``.json`` -- ``{"image name or stem": "prompt", ...}``, or a list in sorted image order;
    * ``.csv`` -- columns ``image`` and ``prompt``;
    * anything else -- text, one prompt per line: a single line serves every image, otherwise
      the lines pair with the images in sorted order and their counts must match.
    """
    path = Path(os.fspath(file))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StagingError(f"Cannot read the prompts file {path}: {exc}") from None
    mapping: dict[str, str] | None = None
    lines: list[str] | None = None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StagingError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            mapping = {str(k): str(v) for k, v in data.items()}
        elif isinstance(data, list):
            lines = [str(v) for v in data]
        else:
            raise StagingError(f"{path} must hold an object (image -> prompt) or a list.")
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"image", "prompt"} <= set(rows[0]):
            raise StagingError(f"{path} needs the columns 'image' and 'prompt'.")
        mapping = {r["image"]: r["prompt"] for r in rows}
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    if mapping is not None:
        out, missing = [], []
        for image in images:
            found = next((mapping[k] for k in _keys(image, root) if k in mapping), None)
            if found is None:
                missing.append(image.name)
            out.append(found or "")
        if missing:
            raise StagingError(
                f"{path} has no prompt for {len(missing)} image(s), e.g. {', '.join(missing[:3])}."
            )
        return out
    assert lines is not None
    if len(lines) == 1:
        return lines * len(images)
    if len(lines) != len(images):
        raise StagingError(
            f"{path} has {len(lines)} prompts for {len(images)} images; give one prompt per "
            "image (in sorted file order), a single prompt for all, or a JSON/CSV mapping."
        )
    return lines


def evaluate_clip_score(
    engine,
    images: str | os.PathLike,
    prompts: str | os.PathLike | None = None,
    prompt: str | None = None,
    limit: int = 0,
    scorer: ClipScorer | None = None,
) -> dict[str, Any]:
    """CLIP similarity of each image in folder ``images`` with its prompt (see module doc).

    Give either ``prompt`` (one text for every image) or ``prompts`` (a file, see
    :func:`pair_prompts`). Returns a JSON-ready report with the means and a ``per_image`` list.
    """
    from staging.embed._torch import torch_device
    from staging.io import list_images

    if (prompts is None) == (prompt is None):
        raise StagingError(
            "Give exactly one of --prompt TEXT (one prompt for all images) or --prompts FILE."
        )
    root = Path(os.fspath(images))
    files = list_images(root)
    if limit:
        files = files[:limit]
    if not files:
        raise StagingError(f"No images in {root}.")
    root_dir = root if root.is_dir() else root.parent
    texts = [prompt] * len(files) if prompt is not None else pair_prompts(files, root_dir, prompts)
    if any(not t.strip() for t in texts):
        raise StagingError("Every image needs a non-empty prompt.")
    if scorer is None:
        scorer = load_clip_scorer(engine.store, device=torch_device(engine.runtime))
    pixels = [engine.load_image(f) for f in files]
    start = time.perf_counter()
    scorer.truncated = 0
    unique = list(dict.fromkeys(texts))
    sims = scorer.similarity(pixels, unique)
    seconds = time.perf_counter() - start
    own = np.array([unique.index(t) for t in texts])
    cosine = sims[np.arange(len(files)), own].astype(np.float64)
    report: dict[str, Any] = {
        "model": MODEL,
        "images": len(files),
        "prompts": len(unique),
        "mean_cosine": float(cosine.mean()),
        "std_cosine": float(cosine.std()),
        "min_cosine": float(cosine.min()),
        "max_cosine": float(cosine.max()),
        "clip_score": float(clip_score(cosine).mean()),
    }
    if len(unique) > 1:
        report["top1_match"] = float((sims.argmax(axis=1) == own).mean())
    report["truncated_prompts"] = int(scorer.truncated)
    report["seconds_per_image"] = seconds / len(files)
    report["per_image"] = [
        {
            "image": f.relative_to(root_dir).as_posix() if f.is_relative_to(root_dir) else str(f),
            "prompt": t,
            "cosine": round(float(c), 6),
            "clip_score": round(float(clip_score(c)), 4),
        }
        for f, t, c in zip(files, texts, cosine, strict=True)
    ]
    if not all(math.isfinite(v) for v in cosine):
        raise StagingError("CLIP produced non-finite similarities; the checkpoint may be damaged.")
    return report
