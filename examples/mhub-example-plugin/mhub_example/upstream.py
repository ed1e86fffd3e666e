"""The upstream TinyNet ("tinyref"): the authors' own implementation, in their own layout.

A real plugin would depend on the upstream package instead of carrying a copy; it is here so the example
is self-contained. ``build`` is registered with the ``register_reference_models`` hook, which makes
``mhub validate/manifest --reference tinyref:tinynet`` run this code as the independent reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class RefBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        self.conv_a = nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(out_chs)
        self.conv_b = nn.Conv2d(out_chs, out_chs, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_a(self.conv_a(x)))
        return F.relu(self.bn_b(self.conv_b(x)))


class TinyRefNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_chans: int = 3, widths: Sequence[int] = (8, 16),
                 depths: Sequence[int] = (1, 1), stem_chs: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, stem_chs, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_chs)
        stages, in_chs = [], stem_chs
        for index, (width, depth) in enumerate(zip(widths, depths)):
            blocks = []
            for block in range(depth):
                blocks.append(RefBlock(in_chs, width, 2 if index > 0 and block == 0 else 1))
                in_chs = width
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(in_chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return self.head(x.mean((2, 3)))


CONFIGS = {"tinynet": {"widths": (8, 16), "depths": (1, 1), "stem_chs": 8}}


def build(name: str, *, num_classes: int, in_chans: int) -> nn.Module:
    """The upstream model called ``name``, for ``--reference tinyref:NAME``."""
    if name not in CONFIGS:
        raise ValueError(f"tinyref has no model '{name}' (it has {', '.join(CONFIGS)})")
    return TinyRefNet(num_classes=num_classes, in_chans=in_chans, **CONFIGS[name])
