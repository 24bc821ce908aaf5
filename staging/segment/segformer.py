"""``segformer-ade``: SegFormer (Xie et al., NeurIPS 2021) trained on ADE20K's 150 classes.

The checkpoint is the registry model ``segformer-ade`` (``nvidia/segformer-b0-finetuned-ade-
512-512``: ``config.json`` with the class names, ``preprocessor_config.json``,
``pytorch_model.bin``), a folder in the models directory loaded with transformers'
``AutoModelForSemanticSegmentation`` (so another ADE20K semantic-segmentation checkpoint in the
same layout, a bigger SegFormer or a UperNet, loads the same way). Nothing is downloaded here:
``staging models pull segformer-ade`` fetches it.

Input as its image processor prepares it: the whole scene resized to the checkpoint's size
(512x512), pixels/255, ImageNet mean/std. Output: logits at a quarter of that size, enlarged
back (bilinear) to at most the input size, arg-maxed, and the labels resized (nearest) to the
scene. b0 has 3.8 M parameters: about 0.7 s per 1024x768 scene on 2 CPU cores (the b0
architecture, timed with random weights), once per scene, at indexing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from staging.embed._torch import checkpoint_errors, missing_weights, require, torch_device
from staging.errors import StagingError
from staging.segment.parse import SceneParse, SceneParser

INSTALL = "torch transformers   (tested: pip install -r requirements-torch.txt)"
WITHOUT = "or stage without a scene parser (STAGING_SCENE_PARSER=none)."
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegformerParser(SceneParser):
    name = "segformer-ade"

    def __init__(self, module, size: tuple[int, int], mean, std, device: str = "cpu"):
        self.torch = require("torch", INSTALL, "The segformer-ade scene parser", hint=WITHOUT)
        self.module = module.eval().to(device)
        self.device = device
        self.size = size  # (h, w) of the network's input
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        labels = module.config.id2label
        self.names = tuple(str(labels[i]) for i in range(len(labels)))

    def parse(self, rgb: np.ndarray) -> SceneParse:
        h, w = rgb.shape[:2]
        net_h, net_w = self.size
        # PIL's bilinear, as the checkpoint's image processor resizes (it low-passes when it
        # shrinks; OpenCV's does not, and a 1024 px scene's fine texture would alias)
        x = np.asarray(Image.fromarray(rgb).resize((net_w, net_h), Image.BILINEAR))
        x = (x.astype(np.float32) / 255.0 - self.mean) / self.std
        batch = self.torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).to(self.device)
        with self.torch.inference_mode():
            logits = self.module(pixel_values=batch).logits
            # enlarged to the input's size at most: full-size logits of 150 classes would
            # take gigabytes for a big scene, and the labels are resized after the arg-max
            scale = min(1.0, max(net_h, net_w) / max(h, w))
            out = (max(1, round(h * scale)), max(1, round(w * scale)))
            logits = self.torch.nn.functional.interpolate(
                logits.float(), size=out, mode="bilinear", align_corners=False
            )
            labels = logits.argmax(dim=1)[0].cpu().numpy().astype(np.int32)
        return SceneParse(labels, self.names).resized((w, h))


def _input_size(folder: Path, config) -> tuple[int, int]:
    """(h, w) from the checkpoint's ``preprocessor_config.json`` (``size`` as a number or as
    height/width), else the config's ``image_size``, else 512."""
    size = None
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        size = json.loads(processor.read_text(encoding="utf-8")).get("size")
    if isinstance(size, dict):
        return int(size.get("height", 512)), int(size.get("width", 512))
    side = int(size or getattr(config, "image_size", 512) or 512)
    return side, side


def _normalisation(folder: Path) -> tuple[tuple, tuple]:
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        data = json.loads(processor.read_text(encoding="utf-8"))
        return tuple(data.get("image_mean", IMAGENET_MEAN)), tuple(
            data.get("image_std", IMAGENET_STD)
        )
    return IMAGENET_MEAN, IMAGENET_STD


def create(runtime, model: str = "segformer-ade") -> SegformerParser:
    """Load the registry checkpoint ``model`` onto ``runtime.device``.

    Raises :class:`~staging.errors.StagingError` naming the pip command when torch or
    transformers is missing, and :class:`~staging.errors.ModelNotAvailableError` naming
    ``staging models pull <model>`` when the checkpoint is not on disk.
    """
    what = f"The {model} scene parser"
    require("torch", INSTALL, what, hint=WITHOUT)
    transformers = require("transformers", INSTALL, what, hint=WITHOUT)
    folder = runtime.store.path(model)  # ModelNotAvailableError names the pull command
    with checkpoint_errors(what, folder, model, INSTALL):
        module, info = transformers.AutoModelForSemanticSegmentation.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True
        )
    missing = missing_weights(info)
    if missing:
        raise StagingError(
            f"The {model} checkpoint in {folder} lacks (or mis-shapes) {len(missing)} weights, "
            f"e.g. {', '.join(sorted(missing)[:3])}. Fetch it again with:\n"
            f"    staging models pull {model} --force"
        )
    mean, std = _normalisation(Path(folder))
    return SegformerParser(
        module, _input_size(Path(folder), module.config), mean, std, torch_device(runtime)
    )
