"""LayerNorm over the channels of NCHW tensors (ConvNeXt's ``channels_first`` LayerNorm).

Liu et al., "A ConvNet for the 2020s" (2022). Same parameters as ``nn.LayerNorm(C)`` (``weight``, ``bias``),
so checkpoints of timm's and torchvision's ``LayerNorm2d`` load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """Normalise each pixel's channel vector of a ``(B, C, H, W)`` tensor.

    Args:
        num_channels: ``C``.
        eps: added to the variance; 1e-6 as ConvNeXt (timm, torchvision) uses, not ``nn.LayerNorm``'s 1e-5.
        affine: learn ``weight`` and ``bias``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
