"""torchvision's ``Inception3`` network, written out so the ``inception_v3`` embedder needs torch
alone.

Why not import torchvision: on x86-64, PyPI serves torchvision only as a build against CUDA
torch (~5.5 GB installed with its CUDA libraries), and it does not import beside the CPU build of
torch (``operator torchvision::nms does not exist``). The CPU build of torch with transformers
and diffusers installs in ~1.3 GB. The network below is the same computation with the same
parameter names as torchvision's (BSD-3-Clause), so torchvision's ``IMAGENET1K_V1`` state dict
loads into it strictly; tests compare the two, output for output, where torchvision imports.
Only the inference path is kept: no auxiliary classifier, no weight initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Each branch of an Inception block: an optional pooling first ("avg": 3x3 stride 1; "max": 3x3
# stride 2), then convolutions in sequence (name, in, out, kernel, stride, padding), then
# optionally two parallel convolutions whose outputs are concatenated (block E).


def _a(cin: int, pool: int):
    return [
        (None, [("branch1x1", cin, 64, 1, 1, 0)], []),
        (None, [("branch5x5_1", cin, 48, 1, 1, 0), ("branch5x5_2", 48, 64, 5, 1, 2)], []),
        (
            None,
            [
                ("branch3x3dbl_1", cin, 64, 1, 1, 0),
                ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                ("branch3x3dbl_3", 96, 96, 3, 1, 1),
            ],
            [],
        ),
        ("avg", [("branch_pool", cin, pool, 1, 1, 0)], []),
    ]


def _b(cin: int):
    return [
        (None, [("branch3x3", cin, 384, 3, 2, 0)], []),
        (
            None,
            [
                ("branch3x3dbl_1", cin, 64, 1, 1, 0),
                ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                ("branch3x3dbl_3", 96, 96, 3, 2, 0),
            ],
            [],
        ),
        ("max", [], []),
    ]


def _c(cin: int, c7: int):
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    return [
        (None, [("branch1x1", cin, 192, 1, 1, 0)], []),
        (
            None,
            [
                ("branch7x7_1", cin, c7, 1, 1, 0),
                ("branch7x7_2", c7, c7, row[0], 1, row[1]),
                ("branch7x7_3", c7, 192, col[0], 1, col[1]),
            ],
            [],
        ),
        (
            None,
            [
                ("branch7x7dbl_1", cin, c7, 1, 1, 0),
                ("branch7x7dbl_2", c7, c7, col[0], 1, col[1]),
                ("branch7x7dbl_3", c7, c7, row[0], 1, row[1]),
                ("branch7x7dbl_4", c7, c7, col[0], 1, col[1]),
                ("branch7x7dbl_5", c7, 192, row[0], 1, row[1]),
            ],
            [],
        ),
        ("avg", [("branch_pool", cin, 192, 1, 1, 0)], []),
    ]


def _d(cin: int):
    return [
        (None, [("branch3x3_1", cin, 192, 1, 1, 0), ("branch3x3_2", 192, 320, 3, 2, 0)], []),
        (
            None,
            [
                ("branch7x7x3_1", cin, 192, 1, 1, 0),
                ("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
                ("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
                ("branch7x7x3_4", 192, 192, 3, 2, 0),
            ],
            [],
        ),
        ("max", [], []),
    ]


def _e(cin: int):
    def split(prefix: str):
        return [
            (f"{prefix}a", 384, 384, (1, 3), 1, (0, 1)),
            (f"{prefix}b", 384, 384, (3, 1), 1, (1, 0)),
        ]

    return [
        (None, [("branch1x1", cin, 320, 1, 1, 0)], []),
        (None, [("branch3x3_1", cin, 384, 1, 1, 0)], split("branch3x3_2")),
        (
            None,
            [("branch3x3dbl_1", cin, 448, 1, 1, 0), ("branch3x3dbl_2", 448, 384, 3, 1, 1)],
            split("branch3x3dbl_3"),
        ),
        ("avg", [("branch_pool", cin, 192, 1, 1, 0)], []),
    ]


_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
    "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
    "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool",
)  # fmt: skip
"""The forward order of torchvision's ``Inception3._forward`` (its dropout is a no-op in eval)."""


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU: torchvision's unit."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionBlock(nn.Module):
    """One of torchvision's InceptionA-E: its branches, concatenated along channels."""

    def __init__(self, branches) -> None:
        super().__init__()
        self.plan = []
        for pool, chain, split in branches:
            for name, *args in chain + split:
                self.add_module(name, BasicConv2d(*args))
            self.plan.append((pool, [c[0] for c in chain], [s[0] for s in split]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for pool, chain, split in self.plan:
            y = x
            if pool == "avg":
                y = F.avg_pool2d(y, kernel_size=3, stride=1, padding=1)
            elif pool == "max":
                y = F.max_pool2d(y, kernel_size=3, stride=2)
            for name in chain:
                y = getattr(self, name)(y)
            if split:
                y = torch.cat([getattr(self, name)(y) for name in split], 1)
            outputs.append(y)
        return torch.cat(outputs, 1)


class Inception3(nn.Module):
    """Inception-V3 up to the 2048-d global average pool, named as torchvision names it.

    ``transform_input`` maps ImageNet-normalised input to the ``[-1, 1]`` range the Google
    weights expect, as torchvision does for them. ``fc`` is kept (Identity by default) so a
    state dict with or without it can be loaded.
    """

    def __init__(self, transform_input: bool = True, num_classes: int | None = None) -> None:
        super().__init__()
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionBlock(_a(192, 32))
        self.Mixed_5c = InceptionBlock(_a(256, 64))
        self.Mixed_5d = InceptionBlock(_a(288, 64))
        self.Mixed_6a = InceptionBlock(_b(288))
        self.Mixed_6b = InceptionBlock(_c(768, 128))
        self.Mixed_6c = InceptionBlock(_c(768, 160))
        self.Mixed_6d = InceptionBlock(_c(768, 160))
        self.Mixed_6e = InceptionBlock(_c(768, 192))
        self.AuxLogits = None  # the auxiliary classifier only serves training
        self.Mixed_7a = InceptionBlock(_d(768))
        self.Mixed_7b = InceptionBlock(_e(1280))
        self.Mixed_7c = InceptionBlock(_e(2048))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity() if num_classes is None else nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform_input:
            std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            x = x * (std / 0.5) + (mean - 0.5) / 0.5
        for name in _LAYERS:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(x, 1))
