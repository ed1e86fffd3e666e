"""ResMLP's affine "normalisation": a learned per-channel scale and shift, no statistics.

Touvron et al., "ResMLP: Feedforward networks for image classification with data-efficient training"
(2021). Parameters ``alpha`` and ``beta`` have shape ``(1, 1, dim)``, the layout of timm's ``Affine``.
"""

from __future__ import annotations

import torch
from torch import nn


class Affine(nn.Module):
    """``alpha * x + beta`` over the last axis of tokens ``(B, N, dim)``; identity at initialisation."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, self.alpha, x)
