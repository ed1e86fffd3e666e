"""Parallel branches whose outputs are concatenated on the channel axis (Flux's ``Parallel(cat_channels, ...)``).

The building block of every Inception module: each branch sees the same input, and the block's output stacks
the branches' feature maps in order.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class ConcatBranches(nn.Sequential):
    """Run every child on the same input and concatenate the outputs along channels.

    Children are given positionally (named ``0``, ``1``, ...) or as one ``OrderedDict`` (named as given), like
    ``nn.Sequential``; the spatial sizes of the outputs must agree.
    """

    def __init__(self, *branches: nn.Module | OrderedDict):
        super().__init__(*branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self], 1)
