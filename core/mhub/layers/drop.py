"""Regularisers that drop whole paths or blocks of activations in training and are identity in eval.

- :class:`StochasticDepth`: Huang et al., "Deep Networks with Stochastic Depth" (2016), as
  ``torchvision.ops.StochasticDepth`` defines the ``row`` and ``batch`` modes.
- :class:`DropBlock`: Ghiasi et al., "DropBlock: A regularization method for convolutional networks" (2018).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def stochastic_depth(x: torch.Tensor, p: float, mode: str = "row", training: bool = True) -> torch.Tensor:
    """Zero the residual branch ``x`` with probability ``p`` and scale survivors by ``1 / (1 - p)``.

    Args:
        x: the residual branch output, batch first.
        p: drop probability in ``[0, 1]``.
        mode: ``"row"`` draws one decision per sample, ``"batch"`` one for the whole batch.
        training: identity when false.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability must be in [0, 1], got {p}")
    if mode not in ("row", "batch"):
        raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    mask = x.new_empty(shape).bernoulli_(keep)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask


class StochasticDepth(nn.Module):
    """Drop path: see :func:`stochastic_depth`. Identity in eval mode or when ``p == 0``."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


class DropBlock(nn.Module):
    """Drop square ``block_size`` x ``block_size`` regions of each feature map in training.

    Block centres are drawn on a grid padded by ``block_size - 1`` so that every activation is covered by
    exactly ``block_size**2`` candidate centres; the seed rate is then chosen so that each activation is
    dropped with probability exactly ``drop_prob`` (the paper's gamma only approximates that and drops
    less near the border). Kept activations are rescaled by ``count / kept`` as in the paper.

    Args:
        drop_prob: fraction of activations to drop, in ``[0, 1)``.
        block_size: side of the dropped squares (clipped to the feature-map size).
        batchwise: share one mask across the channels of a sample instead of one per channel.
    """

    def __init__(self, drop_prob: float, block_size: int = 7, *, batchwise: bool = False):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.drop_prob = drop_prob
        self.block_size = block_size
        self.batchwise = batchwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        n, c, h, w = x.shape
        size = min(self.block_size, h, w)
        gamma = 1.0 - (1.0 - self.drop_prob) ** (1.0 / (size * size))
        seeds = torch.rand(n, 1 if self.batchwise else c, h + size - 1, w + size - 1, device=x.device) < gamma
        dropped = F.max_pool2d(seeds.to(x.dtype), kernel_size=size, stride=1)
        keep = 1.0 - dropped
        scale = keep.numel() / keep.sum().clamp(min=1.0)
        return x * (keep * scale).to(x.dtype)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, block_size={self.block_size}, batchwise={self.batchwise}"
