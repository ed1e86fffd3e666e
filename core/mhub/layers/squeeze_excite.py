"""Channel attention: squeeze-and-excitation and its single-layer "effective" variant.

- SE: Hu et al., "Squeeze-and-Excitation Networks" (2018); layout of timm's ``SEModule``
  (``fc1``/``fc2`` 1x1 convolutions with bias).
- ESE: Lee & Park, "CenterMask: Real-Time Anchor-Free Instance Segmentation" (2020); one 1x1 conv ``fc``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .divisible import make_divisible


class SqueezeExcite(nn.Module):
    """``x * gate(fc2(act(fc1(mean(x)))))`` with 1x1 convolutions ``fc1``/``fc2``."""

    def __init__(self, in_chs: int, rd_channels: int, *, act_layer: Callable[[], nn.Module] = nn.ReLU,
                 gate_layer: Callable[[], nn.Module] = nn.Sigmoid, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Conv2d(in_chs, rd_channels, 1, bias=bias)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(rd_channels, in_chs, 1, bias=bias)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(scale))))


class EffectiveSqueezeExcite(nn.Module):
    """``x * gate(fc(mean(x)))`` with one full-width 1x1 convolution ``fc``."""

    def __init__(self, in_chs: int, *, gate_layer: Callable[[], nn.Module] = nn.Hardsigmoid, bias: bool = True):
        super().__init__()
        self.fc = nn.Conv2d(in_chs, in_chs, 1, bias=bias)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


def squeeze_excite(in_chs: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                   act_layer: Callable[[], nn.Module] = nn.ReLU, gate_layer: Callable[[], nn.Module] = nn.Sigmoid,
                   *, rd_divisor: int = 8, round_limit: float = 0.0, bias: bool = True) -> SqueezeExcite:
    """A squeeze-and-excitation module.

    Args:
        in_chs: channels of the input (and output).
        rd_ratio: reduced width as a fraction of ``in_chs`` when ``rd_channels`` is not given.
        rd_channels: reduced width; overrides ``rd_ratio``.
        act_layer: activation between the two 1x1 convolutions.
        gate_layer: gate applied to the excitation (sigmoid).
        rd_divisor: ``in_chs * rd_ratio`` is rounded with :func:`make_divisible` to this multiple
            (8, as timm's SE-ResNets; 1 disables rounding beyond ``int``).
        round_limit: passed to :func:`make_divisible` (0: never bump up).
        bias: bias on the 1x1 convolutions.
    """
    if rd_channels is None:
        rd_channels = make_divisible(in_chs * rd_ratio, rd_divisor, round_limit=round_limit)
    return SqueezeExcite(in_chs, rd_channels, act_layer=act_layer, gate_layer=gate_layer, bias=bias)


def efficient_squeeze_excite(in_chs: int, gate_layer: Callable[[], nn.Module] = nn.Hardsigmoid, *,
                             bias: bool = True) -> EffectiveSqueezeExcite:
    """An effective squeeze-and-excitation module (one 1x1 convolution, hard-sigmoid gate)."""
    return EffectiveSqueezeExcite(in_chs, gate_layer=gate_layer, bias=bias)
