"""Global pooling layers for classifier heads: over the pixels of NCHW maps, or over tokens ``(B, N, D)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POOL_TYPES = ("avg", "max", "avgmax", "catavgmax", "token", "avg_tokens")


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


class TokenPool(nn.Module):
    """Pool tokens ``(B, N, D)`` to ``(B, D)``: the first (class) token, or a mean over tokens.

    Args:
        mode: ``"token"`` takes token 0 (ViT's class token); ``"avg"`` averages the tokens after the first
            ``num_prefix_tokens`` (MLP-Mixer: all of them).
        num_prefix_tokens: leading tokens ``"avg"`` leaves out.
    """

    def __init__(self, mode: str = "token", num_prefix_tokens: int = 0):
        super().__init__()
        if mode not in ("token", "avg"):
            raise ValueError(f"unknown token pool mode {mode!r}; expected 'token' or 'avg'")
        self.mode = mode
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "token":
            return x[:, 0]
        return x[:, self.num_prefix_tokens:].mean(dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, num_prefix_tokens={self.num_prefix_tokens}"


def create_pool(pool: str | None) -> tuple[nn.Module, int]:
    """A global pooling layer by name and its channel multiplier.

    Args:
        pool: ``"avg"``, ``"max"``, ``"avgmax"``, ``"catavgmax"`` over NCHW maps; ``"token"`` (class token) or
            ``"avg_tokens"`` (mean) over ``(B, N, D)`` tokens; ``None``/``""`` for none (the input is already
            pooled).

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
    if pool == "token":
        return TokenPool("token"), 1
    if pool == "avg_tokens":
        return TokenPool("avg"), 1
    raise ValueError(f"unknown pool {pool!r}; expected one of {', '.join(POOL_TYPES)} or None")
