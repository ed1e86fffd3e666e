"""Inverted-residual blocks of the MobileNet/MNASNet/EfficientNet families (Metalhead's ``mbconv.jl``).

- depthwise-separable: Howard et al., "MobileNets" (2017): depthwise kxk, then pointwise 1x1, both activated.
- ``mbconv``: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (2018), with the
  optional squeeze-excite of Howard et al., "Searching for MobileNetV3" (2019) and Tan & Le, "EfficientNet"
  (2019): expand 1x1, depthwise kxk, squeeze-excite, linear project 1x1.
- ``fused_mbconv``: Tan & Le, "EfficientNetV2" (2021): the expand and depthwise convolutions fused into one
  full kxk convolution.

Each function returns an :class:`InvertedResidual`: an ``nn.Sequential`` of named parts (``expand``, ``dw``,
``se``, ``project``, ``conv``; each part a :func:`~mhub.layers.conv_norm`) that adds its input back when
the block keeps the shape (stride 1, ``in_chs == out_chs``) and ``skip`` allows it. Layer order,
squeeze-excite placement and the residual rule are those of torchvision's ``MBConv``/``FusedMBConv`` and
timm's ``InvertedResidual``/``EdgeResidual``/``DepthwiseSeparableConv``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from .conv_norm import conv_norm
from .drop import StochasticDepth

LayerFactory = Callable[..., nn.Module]


class InvertedResidual(nn.Sequential):
    """Named parts applied in order, plus the input when ``residual`` is set.

    A ``drop_path`` part (stochastic depth, no parameters) is appended when the block is residual and
    ``drop_path_rate > 0``, so it scales the branch before the addition, as torchvision and timm do.
    """

    def __init__(self, parts: OrderedDict, *, residual: bool, drop_path_rate: float = 0.0):
        if residual and drop_path_rate > 0:
            parts["drop_path"] = StochasticDepth(drop_path_rate, "row")
        super().__init__(parts)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out + x if self.residual else out

    def extra_repr(self) -> str:
        return f"residual={self.residual}"


def _norm_kwargs(norm_layer, eps, momentum, padding) -> dict:
    return dict(norm_layer=norm_layer, eps=eps, momentum=momentum, padding=padding)


def mbconv(kernel_size: int, in_chs: int, mid_chs: int, out_chs: int, act_layer: LayerFactory = nn.ReLU6, *,
           stride: int = 1, se_layer: Callable[[int], nn.Module] | None = None,
           norm_layer: LayerFactory = nn.BatchNorm2d, eps: float = 1e-5, momentum: float = 0.1, padding=None,
           drop_path_rate: float = 0.0, skip: bool = True) -> InvertedResidual:
    """Mobile inverted bottleneck: ``expand`` 1x1 -> ``dw`` kxk -> ``se`` -> ``project`` 1x1 (no activation).

    Args:
        kernel_size: depthwise kernel size.
        in_chs: input channels.
        mid_chs: expanded channels; equal to ``in_chs`` leaves the ``expand`` convolution out
            (MobileNetV2's first block, EfficientNet's expansion-1 stage).
        out_chs: output channels.
        act_layer: activation after ``expand`` and ``dw`` (and inside ``se`` unless it sets its own).
        stride: depthwise stride.
        se_layer: ``se_layer(mid_chs)`` builds the squeeze-excite module; ``None`` for none.
        norm_layer: normalisation factory.
        eps: BatchNorm epsilon.
        momentum: BatchNorm momentum.
        padding: ``None`` (symmetric) or ``"same"`` (TensorFlow).
        drop_path_rate: stochastic depth on the residual branch.
        skip: allow the residual connection (it also needs stride 1 and ``in_chs == out_chs``).
    """
    kw = _norm_kwargs(norm_layer, eps, momentum, padding)
    parts = OrderedDict()
    if mid_chs != in_chs:
        parts["expand"] = conv_norm(1, in_chs, mid_chs, act_layer, **kw)
    parts["dw"] = conv_norm(kernel_size, mid_chs, mid_chs, act_layer, stride=stride, groups=mid_chs, **kw)
    if se_layer is not None:
        parts["se"] = se_layer(mid_chs)
    parts["project"] = conv_norm(1, mid_chs, out_chs, None, **kw)
    residual = skip and stride == 1 and in_chs == out_chs
    return InvertedResidual(parts, residual=residual, drop_path_rate=drop_path_rate)


def fused_mbconv(kernel_size: int, in_chs: int, mid_chs: int | None, out_chs: int,
                 act_layer: LayerFactory = nn.SiLU, *, stride: int = 1,
                 se_layer: Callable[[int], nn.Module] | None = None, norm_layer: LayerFactory = nn.BatchNorm2d,
                 eps: float = 1e-5, momentum: float = 0.1, padding=None, drop_path_rate: float = 0.0,
                 skip: bool = True) -> InvertedResidual:
    """Fused inverted bottleneck: ``expand`` kxk (strided) -> ``se`` -> ``project`` 1x1 (no activation).

    Args:
        kernel_size: kernel size of the fused convolution.
        in_chs: input channels.
        mid_chs: expanded channels; ``None`` gives the single-convolution form ``conv`` kxk with activation
            (EfficientNetV2's expansion-1 stage, timm's ``ConvBnAct``).
        out_chs: output channels.
        act_layer: activation after the fused convolution.
        stride: stride of the fused convolution.
        se_layer: ``se_layer(mid_chs)`` builds the squeeze-excite module; ``None`` for none.
        norm_layer: normalisation factory.
        eps: BatchNorm epsilon.
        momentum: BatchNorm momentum.
        padding: ``None`` (symmetric) or ``"same"`` (TensorFlow).
        drop_path_rate: stochastic depth on the residual branch.
        skip: allow the residual connection (it also needs stride 1 and ``in_chs == out_chs``).
    """
    kw = _norm_kwargs(norm_layer, eps, momentum, padding)
    parts = OrderedDict()
    if mid_chs is None:
        parts["conv"] = conv_norm(kernel_size, in_chs, out_chs, act_layer, stride=stride, **kw)
    else:
        parts["expand"] = conv_norm(kernel_size, in_chs, mid_chs, act_layer, stride=stride, **kw)
        if se_layer is not None:
            parts["se"] = se_layer(mid_chs)
        parts["project"] = conv_norm(1, mid_chs, out_chs, None, **kw)
    residual = skip and stride == 1 and in_chs == out_chs
    return InvertedResidual(parts, residual=residual, drop_path_rate=drop_path_rate)


def dwsep_conv(kernel_size: int, in_chs: int, out_chs: int, act_layer: LayerFactory = nn.ReLU6, *,
               stride: int = 1, se_layer: Callable[[int], nn.Module] | None = None,
               norm_layer: LayerFactory = nn.BatchNorm2d, eps: float = 1e-5, momentum: float = 0.1, padding=None,
               **_ignored) -> InvertedResidual:
    """MobileNetV1's depthwise-separable convolution: ``dw`` kxk -> ``se`` -> ``project`` 1x1, both activated.

    Never residual (as in MobileNetV1 and timm's ``dsa`` blocks), so ``drop_path_rate`` and ``skip`` are
    accepted and ignored.

    Args:
        kernel_size: depthwise kernel size.
        in_chs: input channels.
        out_chs: output channels.
        act_layer: activation after both convolutions.
        stride: depthwise stride.
        se_layer: ``se_layer(in_chs)`` builds an optional squeeze-excite module.
        norm_layer: normalisation factory.
        eps: BatchNorm epsilon.
        momentum: BatchNorm momentum.
        padding: ``None`` (symmetric) or ``"same"`` (TensorFlow).
    """
    kw = _norm_kwargs(norm_layer, eps, momentum, padding)
    parts = OrderedDict(dw=conv_norm(kernel_size, in_chs, in_chs, act_layer, stride=stride, groups=in_chs, **kw))
    if se_layer is not None:
        parts["se"] = se_layer(in_chs)
    parts["project"] = conv_norm(1, in_chs, out_chs, act_layer, **kw)
    return InvertedResidual(parts, residual=False)
