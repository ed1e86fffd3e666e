"""LayerScale: a learned per-channel scale on a residual branch.

Touvron et al., "Going deeper with Image Transformers" (CaiT, 2021); used by ConvNeXt, ResMLP and DeiT III.
Channels are the last axis (tokens ``(B, N, C)`` or channels-last maps ``(B, H, W, C)``).
"""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """``x * gamma`` with ``gamma`` of shape ``(dim,)``, initialised to ``init_value``.

    Args:
        dim: channels (the last axis of the input).
        init_value: initial scale; small values (1e-6 .. 1e-4) start deep residual networks near identity.
    """

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_value)

    def extra_repr(self) -> str:
        return f"dim={self.gamma.shape[0]}, init_value={self.init_value}"
