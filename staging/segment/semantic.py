"""Scene parsers that are transformers semantic-segmentation checkpoints trained on ADE20K.

Two registry models, loaded the same way (``AutoModelForSemanticSegmentation`` from a folder
in the models directory: ``config.json`` with the class names, ``preprocessor_config.json``,
``pytorch_model.bin``); ``staging models pull NAME`` fetches one, nothing is downloaded here:

=============================  ====================================  =======  ======  ========
name                           checkpoint                            ADE mIoU  size   licence
=============================  ====================================  =======  ======  ========
``upernet-convnext-tiny-ade``  ``openmmlab/upernet-convnext-tiny``   46.1     241 MB  MIT
``segformer-ade``              ``nvidia/segformer-b0-finetuned-      37.4     15 MB   NVIDIA,
                               ade-512-512``                                          non-
                                                                                      commercial
=============================  ====================================  =======  ======  ========

(mIoU as their authors publish it.) ``auto`` prefers the first. A scene is parsed once, at
indexing (the larger checkpoint takes seconds per scene on a CPU; BENCHMARKS.md).

Input as their image processors prepare it (:class:`Preprocessing`): the whole scene resized
to the checkpoint's size (512x512) with PIL's bilinear, rescaled (pixels/255) and normalised
as the processor says. Output: the logits,
enlarged (bilinear) to at most the input size, arg-maxed, the labels resized (nearest) to the
scene: full-size logits of 150 classes would take gigabytes for a big scene.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from staging.embed._torch import checkpoint_errors, missing_weights, require, torch_device
from staging.errors import StagingError
from staging.segment.scene_parse import SceneParse, SceneParser

INSTALL = "torch transformers   (tested: pip install -r requirements-torch.txt)"
WITHOUT = "or stage without a scene parser (STAGING_SCENE_PARSER=none)."
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """What the checkpoint's image processor does before the network (its
    ``preprocessor_config.json``; without it: 512x512, pixels/255, ImageNet mean/std)."""

    size: tuple[int, int] = (512, 512)  # (h, w)
    rescale: float = 1 / 255  # 1.0 when the processor does not rescale
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @classmethod
    def of(cls, folder: Path) -> Preprocessing:
        path = folder / "preprocessor_config.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        size = data.get("size") or 512  # not the config's image_size: SegFormer's says 224
        if isinstance(size, dict):
            size = (int(size.get("height", 512)), int(size.get("width", 512)))
        elif isinstance(size, (list, tuple)):
            size = (int(size[0]), int(size[-1]))
        else:
            size = (int(size), int(size))
        normalise = data.get("do_normalize", True)
        return cls(
            size,
            float(data.get("rescale_factor", 1 / 255)) if data.get("do_rescale", True) else 1.0,
            tuple(data.get("image_mean", IMAGENET_MEAN)) if normalise else (0.0, 0.0, 0.0),
            tuple(data.get("image_std", IMAGENET_STD)) if normalise else (1.0, 1.0, 1.0),
        )


class SemanticParser(SceneParser):
    def __init__(self, name: str, module, prep: Preprocessing, device: str = "cpu"):
        import torch

        self.name = name
        self.torch = torch
        self.module = module.eval().to(device)
        self.device = device
        self.prep = prep
        labels = module.config.id2label
        self.names = tuple(str(labels[i]) for i in range(len(labels)))

    def parse(self, rgb: np.ndarray) -> SceneParse:
        h, w = rgb.shape[:2]
        net_h, net_w = self.prep.size
        # PIL's bilinear, as the image processor resizes: it low-passes when it shrinks, and
        # OpenCV's does not (a large scene's fine texture would alias)
        x = np.asarray(Image.fromarray(rgb).resize((net_w, net_h), Image.BILINEAR))
        x = (x.astype(np.float32) * self.prep.rescale - np.float32(self.prep.mean)) / np.float32(
            self.prep.std
        )
        batch = self.torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).to(self.device)
        with self.torch.inference_mode():
            logits = self.module(pixel_values=batch).logits
            scale = min(1.0, max(net_h, net_w) / max(h, w))
            out = (max(1, round(h * scale)), max(1, round(w * scale)))
            logits = self.torch.nn.functional.interpolate(
                logits.float(), size=out, mode="bilinear", align_corners=False
            )
            labels = logits.argmax(dim=1)[0].cpu().numpy().astype(np.int32)
        return SceneParse(labels, self.names).resized((w, h))


def create(runtime, model: str) -> SemanticParser:
    """Load the registry checkpoint ``model`` onto ``runtime.device``.

    Raises :class:`~staging.errors.StagingError` naming the pip command when torch or
    transformers is missing, and :class:`~staging.errors.ModelNotAvailableError` naming
    ``staging models pull <model>`` when the checkpoint is not on disk; a damaged checkpoint
    (weights or processor file) is a StagingError that says to pull it again.
    """
    what = f"The {model} scene parser"
    require("torch", INSTALL, what, hint=WITHOUT)
    transformers = require("transformers", INSTALL, what, hint=WITHOUT)
    folder = runtime.store.path(model)  # ModelNotAvailableError names the pull command
    with checkpoint_errors(what, folder, model, INSTALL):
        module, info = transformers.AutoModelForSemanticSegmentation.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True
        )
        prep = Preprocessing.of(Path(folder))
    missing = missing_weights(info)
    if missing:
        raise StagingError(
            f"The {model} checkpoint in {folder} lacks (or mis-shapes) {len(missing)} weights, "
            f"e.g. {', '.join(sorted(missing)[:3])}. Fetch it again with:\n"
            f"    staging models pull {model} --force"
        )
    return SemanticParser(model, module, prep, torch_device(runtime))
