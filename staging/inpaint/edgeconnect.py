"""``edgeconnect``: EdgeConnect (Nazeri et al. 2019), the inpainter seed 000 trains (§5.3), from a
model folder that ``staging train inpaint`` wrote (or a user published).

Two generators: the *edge* model draws the hole's missing edges from the grey image, its
known edges and the mask; the *inpainting* model paints the hole from the image and the
completed edge map. The networks are the paper's (``src/networks.py`` of knazeri/edge-connect):
an encoder of three convolutions (7×7, then two stride-2 4×4), residual blocks with dilation 2,
a mirrored decoder; the edge model with spectral normalisation. ``width`` and ``blocks``
scale them down for small machines (the paper: 64 and 8).

A model folder holds::

    config.json              {"format": "staging-edgeconnect", "version": 1, "size": 256,
                              "width": 64, "blocks": 8, "sigma": 2.0, "wbl": [0.9, 0.1] | null,
                              "steps": ..., "dataset": ...}
    edge.safetensors         the edge generator's weights
    inpaint.safetensors      the inpainting generator's weights
    checkpoint.pt            (training only) both discriminators and the optimisers, to resume

The pipeline sees a square window around the hole (as for LaMa and ``sd``) at ``size`` px, and
:class:`~staging.inpaint.base.Inpainter` keeps every pixel outside the hole exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from staging.errors import StagingError
from staging.inpaint.base import Inpainter, context_window, resize_to
from staging.trained import read_folder, save_folder

FORMAT = "staging-edgeconnect"
GENERATORS = ("edge", "inpaint")  # what a model folder holds; the discriminators only train


def _nn():
    try:
        import torch
        from torch import nn
    except ImportError as exc:
        raise StagingError(
            "The edgeconnect inpainter needs torch: pip install torch "
            "(--index-url https://download.pytorch.org/whl/cpu for the CPU build)"
        ) from exc
    return torch, nn


def build_networks(width: int = 64, blocks: int = 8) -> dict[str, Any]:
    """The four networks: ``edge`` and ``inpaint`` generators and their discriminators
    (``edge_d``, ``inpaint_d``: 70×70 PatchGANs with spectral normalisation). ``width`` is
    the first layer's channels in all four (the paper: 64)."""
    torch, nn = _nn()
    spectral = nn.utils.spectral_norm

    def conv(cin, cout, kernel, stride=1, padding=0, dilation=1, sn=False):
        layer = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=not sn)
        return spectral(layer) if sn else layer

    def up(cin, cout, sn):
        layer = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=not sn)
        return spectral(layer) if sn else layer

    def norm(channels):
        return nn.InstanceNorm2d(channels, track_running_stats=False)

    class ResnetBlock(nn.Module):
        def __init__(self, dim: int, sn: bool):
            super().__init__()
            self.block = nn.Sequential(
                nn.ReflectionPad2d(2), conv(dim, dim, 3, dilation=2, sn=sn), norm(dim),
                nn.ReLU(True), nn.ReflectionPad2d(1), conv(dim, dim, 3, sn=sn), norm(dim),
            )  # fmt: skip

        def forward(self, x):
            return x + self.block(x)

    class Generator(nn.Module):
        def __init__(self, cin: int, cout: int, sn: bool):
            super().__init__()
            w = width
            self.encoder = nn.Sequential(
                nn.ReflectionPad2d(3), conv(cin, w, 7, sn=sn), norm(w), nn.ReLU(True),
                conv(w, 2 * w, 4, 2, 1, sn=sn), norm(2 * w), nn.ReLU(True),
                conv(2 * w, 4 * w, 4, 2, 1, sn=sn), norm(4 * w), nn.ReLU(True),
            )  # fmt: skip
            self.middle = nn.Sequential(*[ResnetBlock(4 * w, sn) for _ in range(blocks)])
            self.decoder = nn.Sequential(
                up(4 * w, 2 * w, sn), norm(2 * w), nn.ReLU(True),
                up(2 * w, w, sn), norm(w), nn.ReLU(True),
                nn.ReflectionPad2d(3), nn.Conv2d(w, cout, 7),
            )  # fmt: skip

        def forward(self, x):
            return self.decoder(self.middle(self.encoder(x)))

    class EdgeGenerator(Generator):
        """(grey, known edges, mask) → edge probability."""

        def __init__(self):
            super().__init__(3, 1, sn=True)

        def forward(self, x):
            return torch.sigmoid(super().forward(x))

    class InpaintGenerator(Generator):
        """(masked RGB, edges) → RGB in [0, 1]."""

        def __init__(self):
            super().__init__(4, 3, sn=False)

        def forward(self, x):
            return (torch.tanh(super().forward(x)) + 1) / 2

    class Discriminator(nn.Module):
        """PatchGAN; returns the patch logits and every layer's features (feature matching)."""

        def __init__(self, cin: int):
            super().__init__()
            chans = [cin, width, 2 * width, 4 * width, 8 * width]
            layers = [
                nn.Sequential(conv(chans[i], chans[i + 1], 4, 2 if i < 3 else 1, 1, sn=True),
                              nn.LeakyReLU(0.2, True))
                for i in range(4)
            ]  # fmt: skip
            layers.append(conv(8 * width, 1, 4, 1, 1, sn=True))
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            features = []
            for layer in self.layers:
                x = layer(x)
                features.append(x)
            return x, features

    return {
        "edge": EdgeGenerator(),
        "inpaint": InpaintGenerator(),
        "edge_d": Discriminator(2),
        "inpaint_d": Discriminator(3),
    }


def canny(gray: np.ndarray, sigma: float, hole: np.ndarray | None = None) -> np.ndarray:
    """Canny edges (float32 0/1) of a grey image in [0, 1], as EdgeConnect computes them
    (scikit-image, σ = 2); with ``hole``, edges are found without looking into the hole."""
    from skimage.feature import canny as skimage_canny

    mask = None if hole is None else ~hole
    return skimage_canny(gray, sigma=sigma, mask=mask).astype(np.float32)


def to_gray(rgb01: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the grey EdgeConnect's edge model sees."""
    return (rgb01 @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)


def draw_edges(edge_net, rgb01, hole, known_edges):
    """The edge map completed inside the hole, on tensors: ``rgb01`` N×3×H×W in [0, 1],
    ``hole`` and ``known_edges`` (Canny; only what lies outside the hole is used) N×1×H×W.
    The hole is white in the grey input, as in the paper's code."""
    torch, _ = _nn()
    luma = torch.tensor([0.299, 0.587, 0.114], device=rgb01.device).view(1, 3, 1, 1)
    gray = (rgb01 * luma).sum(1, keepdim=True)
    known = known_edges * (1 - hole)
    return known + edge_net(torch.cat([gray * (1 - hole) + hole, known, hole], 1)) * hole


def paint(inpaint_net, rgb01, hole, edges):
    """The painting from the image with a white hole and the completed ``edges``; its pixels
    outside the hole are for the caller to replace with the known ones."""
    torch, _ = _nn()
    return inpaint_net(torch.cat([rgb01 * (1 - hole) + hole, edges], 1))


def complete(generators: dict, rgb01, hole, known_edges):
    """Both generators in turn: ``(edges, painted)``."""
    edges = draw_edges(generators["edge"], rgb01, hole, known_edges)
    return edges, paint(generators["inpaint"], rgb01, hole, edges)


def save_model(folder: Path, networks: dict, config: dict[str, Any]) -> None:
    """Write the generators and ``config.json`` (the format above), each file whole."""
    save_folder(folder, FORMAT, {k: networks[k] for k in GENERATORS}, config)


def load_model(folder: str | Path, device: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """The generators (eval mode) and config of a model folder; a readable error when the
    folder is not one."""
    train = "staging train inpaint DATA --out DIR"
    config, states = read_folder(folder, FORMAT, GENERATORS, "an EdgeConnect", train)
    networks = build_networks(config["width"], config["blocks"])
    for name in GENERATORS:
        networks[name].load_state_dict(states[name])
    return {name: networks[name].to(device).eval() for name in GENERATORS}, config


class EdgeConnectInpainter(Inpainter):
    name = "edgeconnect"

    def __init__(self, folder: str | Path, device: str = "cpu"):
        self.generators, self.config = load_model(folder, device)
        self.device = device
        self.size = int(self.config["size"])
        self.sigma = float(self.config.get("sigma", 2.0))

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        torch, _ = _nn()
        y0, y1, x0, x1 = context_window(hole, min_side=self.size)
        s = self.size
        crop = resize_to(image[y0:y1, x0:x1], s, s).astype(np.float32) / 255
        cover = resize_to(hole[y0:y1, x0:x1].astype(np.float32), s, s) > 1e-3
        edges = canny(to_gray(crop), self.sigma, cover)

        def tensor(a: np.ndarray):
            a = a[..., None] if a.ndim == 2 else a
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(
                self.device
            )

        with torch.inference_mode():
            hole_t = tensor(cover.astype(np.float32))
            _, painted = complete(self.generators, tensor(crop), hole_t, tensor(edges))
        painted = painted[0].permute(1, 2, 0).float().cpu().numpy()
        painted = np.clip(np.rint(painted * 255), 0, 255).astype(np.uint8)
        out = image.copy()
        out[y0:y1, x0:x1] = resize_to(painted, x1 - x0, y1 - y0)
        return out
