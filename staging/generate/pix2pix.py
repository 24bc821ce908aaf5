"""``pix2pix``: the AdKDD paper's vanilla-staging baseline (seed 000 §5.2), a pix2pix generator
(Isola et al. 2017) trained on the advertiser's own pairs of *product on white → staged image*
by ``staging train pix2pix``.

The networks are pix2pix's: a U-Net generator (``unet_256``: eight stride-2 4×4 down
convolutions, skip connections, dropout in the three innermost up-steps) and a 70×70 PatchGAN
discriminator on (input, output) pairs; instance normalisation, which behaves the same in
training and at inference. ``width`` scales the channels (the paper: 64).

A model folder holds ``config.json`` (``{"format": "staging-pix2pix", "version": 1, "size",
"width", "steps", ...}``), ``generator.safetensors`` (all inference needs) and, for resuming,
``checkpoint.pt``. The backend loads ``pix2pix/`` from a models directory, or ``pix2pix:DIR``.

At generation the canvas (the product placed for the ad) is put on white, resized to a working
size with sides that are multiples of 256 and about ``size``² pixels, and the painting resized
back; the staging pipeline then cuts the full-resolution product back on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from staging.errors import StagingError
from staging.generate._diffusers import resize, working_size
from staging.generate.base import GenerationRequest, Generator
from staging.trained import read_folder, save_folder

FORMAT = "staging-pix2pix"
DOWNS = 8  # unet_256: 256 px in, 1 px at the bottleneck


def _torch():
    try:
        import torch
        from torch import nn
    except ImportError as exc:
        raise StagingError(
            "The pix2pix backend needs torch: pip install torch "
            "(--index-url https://download.pytorch.org/whl/cpu for the CPU build)"
        ) from exc
    return torch, nn


def build_generator(width: int = 64):
    """pix2pix's U-Net (``unet_256``): RGB on white in [-1, 1] → RGB in [-1, 1]."""
    torch, nn = _torch()

    def norm(c):
        return nn.InstanceNorm2d(c)

    class Level(nn.Module):
        """One level of the U: down, the inner levels, up, and the skip connection."""

        def __init__(self, outer: int, inner: int, cin: int, sub=None, outermost=False,
                     innermost=False, dropout=False):  # fmt: skip
            super().__init__()
            down = [nn.Conv2d(cin, inner, 4, 2, 1)]
            if outermost:
                up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
                layers = down + [sub] + up
            elif innermost:
                up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1), norm(outer)]
                layers = [nn.LeakyReLU(0.2, True)] + down + up
            else:
                down = [nn.LeakyReLU(0.2, True)] + down + [norm(inner)]
                up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), norm(outer)]
                layers = down + [sub] + up + ([nn.Dropout(0.5)] if dropout else [])
            self.model = nn.Sequential(*layers)
            self.outermost = outermost

        def forward(self, x):
            return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)

    w = width
    level = Level(8 * w, 8 * w, 8 * w, innermost=True)
    for _ in range(DOWNS - 5):
        level = Level(8 * w, 8 * w, 8 * w, sub=level, dropout=True)
    for scale in (4, 2, 1):
        level = Level(scale * w, 2 * scale * w, scale * w, sub=level)
    return Level(3, w, 3, sub=level, outermost=True)


def build_discriminator(width: int = 64):
    """The 70×70 PatchGAN on (input, output): 6 channels → a map of real/fake logits."""
    _, nn = _torch()
    w = width
    layers = [nn.Conv2d(6, w, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for cin, cout, stride in ((w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 8 * w, 1)):
        layers += [nn.Conv2d(cin, cout, 4, stride, 1), nn.InstanceNorm2d(cout),
                   nn.LeakyReLU(0.2, True)]  # fmt: skip
    layers.append(nn.Conv2d(8 * w, 1, 4, 1, 1))
    return nn.Sequential(*layers)


def on_white(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The product of ``image`` (where ``alpha``) on white: what pix2pix was trained on."""
    a = alpha.astype(np.float32)[..., None]
    out = image.astype(np.float32) * a + 255.0 * (1 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def save_model(folder: Path, generator, config: dict[str, Any]) -> None:
    """Write ``generator.safetensors`` and ``config.json``, each file whole."""
    save_folder(folder, FORMAT, {"generator": generator}, config)


def load_model(folder: str | Path, device: str = "cpu"):
    """``(generator in eval mode, config)`` of a model folder, or a readable error."""
    train = "staging train pix2pix DATA --out DIR"
    config, states = read_folder(folder, FORMAT, ("generator",), "a pix2pix", train)
    generator = build_generator(config["width"])
    generator.load_state_dict(states["generator"])
    return generator.to(device).eval(), config


class Pix2PixGenerator(Generator):
    name = "pix2pix"

    def __init__(self, folder: str | Path, device: str = "cpu"):
        self.network, self.config = load_model(folder, device)
        self.device = device
        self.size = int(self.config["size"])

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"steps_trained": self.config.get("steps")}

    def render(self, request: GenerationRequest) -> np.ndarray:
        torch, _ = _torch()
        width, height = request.size
        w, h = working_size(width, height, self.size, 2**DOWNS)
        source = resize(on_white(request.image, request.alpha), w, h)
        x = torch.from_numpy(source.transpose(2, 0, 1).copy()).float()[None] / 127.5 - 1
        with torch.inference_mode():
            y = self.network(x.to(self.device))[0].float().cpu().numpy().transpose(1, 2, 0)
        painted = np.clip(np.rint((y + 1) * 127.5), 0, 255).astype(np.uint8)
        return resize(painted, width, height, cv2.INTER_CUBIC)
