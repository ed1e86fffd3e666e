"""Global pooling layers for classifier heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POOL_TYPES = ("avg", "max", "avgmax", "catavgmax")


class AdaptiveMeanMaxPool(nn.Module):
    """Mean of adaptive average and adaptive max pooling: ``0.5 * (avg(x) + max(x))``."""

    def __init__(self, output_size=1):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (F.adaptive_avg_pool2d(x, self.output_size) + F.adaptive_max_pool2d(x, self.output_size))


class AdaptiveCatMeanMaxPool(nn.Module):
    """Adaptive average and max pooling concatenated on the channel axis (doubles the channels)."""

    def __init__(self, output_size=1):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.adaptive_avg_pool2d(x, self.output_size), F.adaptive_max_pool2d(x, self.output_size)], 1)


def create_pool(pool: str | None) -> tuple[nn.Module, int]:
    """A global pooling layer by name and its channel multiplier.

    Args:
        pool: ``"avg"``, ``"max"``, ``"avgmax"``, ``"catavgmax"``, or ``None``/``""`` for none (the input is
            already pooled).

    Returns:
        ``(module, multiplier)``: the multiplier is 2 for ``"catavgmax"``, else 1.

    Raises:
        ValueError: an unknown name.
    """
    if not pool:
        return nn.Identity(), 1
    if pool == "avg":
        return nn.AdaptiveAvgPool2d(1), 1
    if pool == "max":
        return nn.AdaptiveMaxPool2d(1), 1
    if pool == "avgmax":
        return AdaptiveMeanMaxPool(1), 1
    if pool == "catavgmax":
        return AdaptiveCatMeanMaxPool(1), 2
    raise ValueError(f"unknown pool {pool!r}; expected one of {', '.join(POOL_TYPES)} or None")
