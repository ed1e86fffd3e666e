"""Convolution + normalisation + activation, the unit every CNN family is made of (Metalhead's ``conv_norm``)."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .padding import create_conv2d

LayerFactory = Callable[..., nn.Module]


def make_norm(norm_layer: LayerFactory, channels: int, *, eps: float = 1e-5, momentum: float = 0.1) -> nn.Module:
    """``norm_layer(channels)``; BatchNorm classes also receive ``eps`` and ``momentum``.

    Other norm layers (GroupNorm via ``functools.partial``, custom callables) are called with the channel
    count alone, so they carry their own options.
    """
    if isinstance(norm_layer, type) and issubclass(norm_layer, _BatchNorm):
        return norm_layer(channels, eps=eps, momentum=momentum)
    return norm_layer(channels)


def make_act(act_layer: LayerFactory | None, *, inplace: bool = False) -> nn.Module | None:
    """``act_layer()``, with ``inplace=True`` when asked and the factory takes it (``nn.ReLU``, ``nn.SiLU``...)."""
    if act_layer is None:
        return None
    if inplace:
        try:
            takes_inplace = "inplace" in inspect.signature(act_layer).parameters
        except (TypeError, ValueError):  # a builtin or C factory without a signature
            takes_inplace = False
        if takes_inplace:
            return act_layer(inplace=True)
    return act_layer()


def conv_norm(kernel_size, in_chs: int, out_chs: int, act_layer: LayerFactory | None = nn.ReLU, *,
              norm_layer: LayerFactory | None = nn.BatchNorm2d, revnorm: bool = False, act_before_norm: bool = False,
              stride=1, padding=None, dilation=1, groups: int = 1, bias: bool | None = None, eps: float = 1e-5,
              momentum: float = 0.1) -> nn.Sequential:
    """A convolution with optional normalisation and activation.

    Args:
        kernel_size: convolution kernel size (int or pair).
        in_chs: input channels.
        out_chs: output channels.
        act_layer: activation factory (``nn.ReLU``); ``None`` for none. Made in place (:func:`make_act`) unless
            it would overwrite the caller's input (``revnorm`` without a norm).
        norm_layer: normalisation factory (``nn.BatchNorm2d``); ``None`` for none.
        revnorm: put the normalisation (over ``in_chs``) and the activation before the convolution
            (pre-activation order: norm, act, conv) instead of after it.
        act_before_norm: order conv, act, norm (ConvMixer); the norm then cannot be folded into the conv.
        stride: convolution stride.
        padding: ``None`` for symmetric ``k // 2 * dilation``, an int/pair, or ``"same"`` for TensorFlow
            ``SAME`` (asymmetric and input-size dependent when strided).
        dilation: convolution dilation.
        groups: convolution groups.
        bias: convolution bias; ``None`` means on unless a normalisation directly follows the convolution.
        eps: BatchNorm epsilon.
        momentum: BatchNorm momentum (PyTorch convention: weight of the new batch statistic).

    Returns:
        ``nn.Sequential`` with children ``conv``, ``norm`` and ``act`` (the last two only when not ``None``),
        in forward order.
    """
    if bias is None:
        bias = norm_layer is None or revnorm or act_before_norm
    conv = create_conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias)
    norm = None
    if norm_layer is not None:
        norm = make_norm(norm_layer, in_chs if revnorm else out_chs, eps=eps, momentum=momentum)
    # In place where the activation's input is a tensor of this unit's own (after the norm, or the convolution),
    # never the caller's input (pre-activation without a norm), as torchvision and timm do: one tensor less.
    act = make_act(act_layer, inplace=not revnorm or norm is not None)
    if revnorm:
        order = [("norm", norm), ("act", act), ("conv", conv)]
    elif act_before_norm:
        order = [("conv", conv), ("act", act), ("norm", norm)]
    else:
        order = [("conv", conv), ("norm", norm), ("act", act)]
    return nn.Sequential(OrderedDict((name, layer) for name, layer in order if layer is not None))


def basic_conv_bn(kernel_size, in_chs: int, out_chs: int, act_layer: LayerFactory | None = nn.ReLU, *,
                  eps: float = 1e-3, momentum: float = 3e-3, **kwargs) -> nn.Sequential:
    """:func:`conv_norm` with TensorFlow's BatchNorm defaults (epsilon 1e-3, decay 0.997 = momentum 3e-3).

    Other keyword arguments are those of :func:`conv_norm`.
    """
    return conv_norm(kernel_size, in_chs, out_chs, act_layer, eps=eps, momentum=momentum, **kwargs)
