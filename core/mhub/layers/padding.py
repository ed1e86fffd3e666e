"""Convolution padding rules: PyTorch's symmetric padding and TensorFlow's ``SAME``.

TensorFlow ``SAME`` makes the output ``ceil(in / stride)`` long and, when the total padding is odd,
puts the extra row/column at the end (bottom/right). That depends on the input size, so a strided
``SAME`` convolution pads in ``forward`` (:class:`Conv2dSame`); a stride-1 one with an odd effective
kernel is symmetric and uses the ordinary static ``padding`` argument.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def symmetric_padding(kernel_size: int, dilation: int = 1) -> int:
    """PyTorch-style padding that keeps the size at stride 1 for odd kernels: ``k // 2 * dilation``."""
    return (kernel_size - 1) // 2 * dilation


def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding of one dimension.

    Returns:
        ``(before, after)``; ``after`` gets the extra element when the total is odd, as in TensorFlow.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def is_static_same(kernel_size, stride=1, dilation=1) -> bool:
    """Whether ``SAME`` padding is symmetric whatever the input size (stride 1, odd effective kernel)."""
    return all(s == 1 and (d * (k - 1)) % 2 == 0
               for k, s, d in zip(_pair(kernel_size), _pair(stride), _pair(dilation)))


def pad_same(x: torch.Tensor, kernel_size, stride=1, dilation=1, value: float = 0.0) -> torch.Tensor:
    """Pad the last two dimensions of ``x`` as TensorFlow ``SAME`` would before a conv or pool."""
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel_size), _pair(stride), _pair(dilation)
    top, bottom = same_padding(x.shape[-2], kh, sh, dh)
    left, right = same_padding(x.shape[-1], kw, sw, dw)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed from each input's size.

    Parameters are those of an ``nn.Conv2d`` (same state-dict keys); ``padding`` is fixed to 0.
    """

    def __init__(self, *args, **kwargs):
        kwargs["padding"] = 0
        super().__init__(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return self._conv_forward(x, self.weight, self.bias)


class MaxPool2dSame(nn.MaxPool2d):
    """``nn.MaxPool2d`` with TensorFlow ``SAME`` padding (padded with ``-inf``, like TensorFlow)."""

    def __init__(self, kernel_size, stride=None, dilation=1, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding=0, dilation=dilation, ceil_mode=ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation, value=-float("inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation, self.ceil_mode)


def create_conv2d(in_chs: int, out_chs: int, kernel_size, *, stride=1, padding=None, dilation=1, groups=1,
                  bias: bool = True) -> nn.Conv2d:
    """A 2D convolution; ``padding`` is ``None`` (symmetric ``k // 2 * dilation``), an int, or ``"same"``.

    Raises:
        ValueError: an unknown padding string.
    """
    if isinstance(padding, str):
        if padding.lower() != "same":
            raise ValueError(f"padding {padding!r}: expected None, an int, a tuple or 'same'")
        if not is_static_same(kernel_size, stride, dilation):
            return Conv2dSame(in_chs, out_chs, kernel_size, stride=stride, dilation=dilation, groups=groups,
                              bias=bias)
        padding = None
    if padding is None:
        padding = tuple(symmetric_padding(k, d) for k, d in zip(_pair(kernel_size), _pair(dilation)))
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=bias)
