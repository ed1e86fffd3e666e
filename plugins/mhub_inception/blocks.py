"""The Inception family's blocks: Inception modules (v3, v4, Inception-ResNet) and Xception blocks.

Every Inception module is a :class:`mhub.layers.ConcatBranches` of branches ``branch0``, ``branch1``, ... (the
paper's figures from left to right), each an ``nn.Sequential`` of convolution units (``conv_norm``: children
``conv``, ``norm``, ``act``) and pools; a branch that forks ends in a nested ``ConcatBranches``. Branches are
written as layer specs (:func:`branch`), so each block reads like its figure.

Block functions take the input width and ``conv``, the model's :class:`ConvUnits`: every convolution unit of a
model shares its activation and BatchNorm constants.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mhub import ConfigError
from mhub.layers import ConcatBranches, StochasticDepth, basic_conv_bn, make_norm

VALID = 0  # TensorFlow 'VALID' padding; specs without a padding keep the size (k // 2)


class InceptionConfigError(ConfigError):
    """An invalid Inception/Xception configuration (the message says what and lists valid choices)."""


@dataclass(frozen=True)
class ConvUnits:
    """A model's convolution units: ``basic_conv_bn`` without bias, with the model's activation and BatchNorm.

    Attributes:
        act_layer: activation factory.
        eps: BatchNorm epsilon (TensorFlow's 1e-3 unless the upstream port used PyTorch's 1e-5).
        momentum: BatchNorm momentum in PyTorch's convention (see :mod:`mhub_inception.configs`).
    """

    act_layer: Callable[[], nn.Module] = nn.ReLU
    eps: float = 1e-3
    momentum: float = 0.1

    def __call__(self, kernel_size, in_chs: int, out_chs: int, act: bool = True, **kwargs: Any) -> nn.Sequential:
        """A conv unit (children ``conv``, ``norm``, ``act``); ``act=False`` leaves the activation out and
        other keyword arguments (``stride``, ``padding``, ``groups``, ``norm_layer``, ``revnorm``) go to
        :func:`mhub.layers.conv_norm`."""
        return basic_conv_bn(kernel_size, in_chs, out_chs, self.act_layer if act else None, eps=self.eps,
                             momentum=self.momentum, bias=False, **kwargs)

    def norm_act(self, chs: int) -> nn.Sequential:
        """BatchNorm and activation without a convolution (children ``norm``, ``act``)."""
        return nn.Sequential(OrderedDict(norm=make_norm(nn.BatchNorm2d, chs, eps=self.eps, momentum=self.momentum),
                                         act=self.act_layer()))


# -- Inception modules ----------------------------------------------------------------------------------
def branch(conv: ConvUnits, in_chs: int, *layers: Any) -> nn.Sequential:
    """One branch of an Inception module, from layer specs in order.

    Args:
        conv: the model's units.
        in_chs: input channels of the branch.
        *layers: ``(kernel, out_chs)`` a size-keeping conv unit (kernel an int or ``(kh, kw)``),
            ``(kernel, out_chs, stride, padding)`` any other (``VALID`` = no padding), an ``nn.Module``
            (a pool) used as is, or a list of ``(kernel, out_chs)``: parallel units on the same input whose
            outputs are concatenated (the "expanded filter bank" fork).

    Returns:
        ``nn.Sequential`` of the layers, children ``0``, ``1``, ...
    """
    modules: list[nn.Module] = []
    for spec in layers:
        if isinstance(spec, nn.Module):
            modules.append(spec)
        elif isinstance(spec, list):
            modules.append(ConcatBranches(*(_unit(conv, in_chs, part) for part in spec)))
            in_chs = sum(part[1] for part in spec)
        else:
            modules.append(_unit(conv, in_chs, spec))
            in_chs = spec[1]
    return nn.Sequential(*modules)


def _unit(conv: ConvUnits, in_chs: int, spec: tuple) -> nn.Module:
    kernel, out_chs, stride, padding = spec if len(spec) == 4 else (*spec, 1, None)
    return conv(kernel, in_chs, out_chs, stride=stride, padding=padding)


def inception_module(*branches: nn.Sequential) -> ConcatBranches:
    """Branches named ``branch0``, ``branch1``, ... in concatenation order."""
    return ConcatBranches(OrderedDict((f"branch{i}", b) for i, b in enumerate(branches)))


def _avg_pool(count_include_pad: bool) -> nn.AvgPool2d:
    # torchvision's Inception v3 averages over the zero padding; the TF-slim ports in timm (v4, IRv2) do not.
    return nn.AvgPool2d(3, 1, 1, count_include_pad=count_include_pad)


def inception_5x5(in_chs: int, *, conv: ConvUnits, pool_chs: int, branch0_chs: int = 64,
                  count_include_pad: bool = True) -> ConcatBranches:
    """35x35 module with a 5x5 branch: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-pool-1x1.

    Inception v3 (torchvision ``InceptionA``, Mixed_5b..5d); with ``branch0_chs=96``, ``pool_chs=64`` and
    ``count_include_pad=False`` the 35x35 module that ends Inception-ResNet-v2's stem (``mixed_5b``).
    """
    return inception_module(
        branch(conv, in_chs, (1, branch0_chs)),
        branch(conv, in_chs, (1, 48), (5, 64)),
        branch(conv, in_chs, (1, 64), (3, 96), (3, 96)),
        branch(conv, in_chs, _avg_pool(count_include_pad), (1, pool_chs)),
    )


def inception_3x3(in_chs: int, *, conv: ConvUnits, count_include_pad: bool = False) -> ConcatBranches:
    """Inception-v4's Inception-A (Figure 4): 1x1 | 1x1-3x3 | 1x1-3x3-3x3 | avg-pool-1x1, 96 channels each."""
    return inception_module(
        branch(conv, in_chs, (1, 96)),
        branch(conv, in_chs, (1, 64), (3, 96)),
        branch(conv, in_chs, (1, 64), (3, 96), (3, 96)),
        branch(conv, in_chs, _avg_pool(count_include_pad), (1, 96)),
    )


def inception_7x7(in_chs: int, *, conv: ConvUnits, widths: Sequence, count_include_pad: bool = True,
                  ) -> ConcatBranches:
    """17x17 module with 7x7 convolutions factorised into 1x7 and 7x1.

    1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avg-pool-1x1. Inception v3's Figure 6 (torchvision
    ``InceptionC``) and Inception-v4's Inception-B (Figure 5) differ only in widths.

    Args:
        widths: ``(branch0, (b1 1x1, 1x7, 7x1), (b2 1x1, 7x1, 1x7, 7x1, 1x7), pool)`` output channels.
    """
    b0, (r1, a1, o1), (r2, a2, b2, c2, o2), pool = widths
    return inception_module(
        branch(conv, in_chs, (1, b0)),
        branch(conv, in_chs, (1, r1), ((1, 7), a1), ((7, 1), o1)),
        branch(conv, in_chs, (1, r2), ((7, 1), a2), ((1, 7), b2), ((7, 1), c2), ((1, 7), o2)),
        branch(conv, in_chs, _avg_pool(count_include_pad), (1, pool)),
    )


def inception_v3_e(in_chs: int, *, conv: ConvUnits, count_include_pad: bool = True) -> ConcatBranches:
    """Inception v3's 8x8 module with expanded filter banks (Figure 7; torchvision ``InceptionE``).

    1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | avg-pool-1x1: 320 + 768 + 768 + 192 channels.
    """
    return inception_module(
        branch(conv, in_chs, (1, 320)),
        branch(conv, in_chs, (1, 384), [((1, 3), 384), ((3, 1), 384)]),
        branch(conv, in_chs, (1, 448), (3, 384), [((1, 3), 384), ((3, 1), 384)]),
        branch(conv, in_chs, _avg_pool(count_include_pad), (1, 192)),
    )


def inception_v4_c(in_chs: int, *, conv: ConvUnits, count_include_pad: bool = False) -> ConcatBranches:
    """Inception-v4's Inception-C (Figure 6): 1x1 | 1x1-(1x3, 3x1) | 1x1-3x1-1x3-(1x3, 3x1) | avg-pool-1x1."""
    return inception_module(
        branch(conv, in_chs, (1, 256)),
        branch(conv, in_chs, (1, 384), [((1, 3), 256), ((3, 1), 256)]),
        branch(conv, in_chs, (1, 384), ((3, 1), 448), ((1, 3), 512), [((1, 3), 256), ((3, 1), 256)]),
        branch(conv, in_chs, _avg_pool(count_include_pad), (1, 256)),
    )


def reduction_a(in_chs: int, *, conv: ConvUnits, k: int, l: int, m: int, n: int) -> ConcatBranches:  # noqa: E741
    """35x35 to 17x17 reduction (Inception-v4 Figure 7): 3x3/2 n | 1x1 k-3x3 l-3x3/2 m | max-pool/2.

    Table 1 of the paper gives ``(k, l, m, n)``: (192, 224, 256, 384) for Inception-v4, (256, 256, 384, 384) for
    Inception-ResNet-v2; Inception v3's Mixed_6a (torchvision ``InceptionB``) is (64, 96, 96, 384).
    """
    return inception_module(
        branch(conv, in_chs, (3, n, 2, VALID)),
        branch(conv, in_chs, (1, k), (3, l), (3, m, 2, VALID)),
        branch(conv, in_chs, nn.MaxPool2d(3, 2)),
    )


def reduction_b(in_chs: int, *, conv: ConvUnits, widths: Sequence) -> ConcatBranches:
    """17x17 to 8x8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max-pool/2.

    Inception-v4's Reduction-B (Figure 8) and Inception v3's Mixed_7a (torchvision ``InceptionD``).

    Args:
        widths: ``((1x1, 3x3/2), (1x1, 1x7, 7x1, 3x3/2))`` output channels.
    """
    (r0, o0), (r1, a1, b1, o1) = widths
    return inception_module(
        branch(conv, in_chs, (1, r0), (3, o0, 2, VALID)),
        branch(conv, in_chs, (1, r1), ((1, 7), a1), ((7, 1), b1), (3, o1, 2, VALID)),
        branch(conv, in_chs, nn.MaxPool2d(3, 2)),
    )


class ScaledResidual(nn.Module):
    """Inception-ResNet's residual unit: ``act(x + scale * proj(branches(x)))``.

    ``proj`` is a 1x1 convolution with bias and no norm that restores the input width ``chs`` (the paper's
    "1x1 Conv (Linear)"); ``scale`` damps the residual (Section 3.3 of the paper).
    """

    def __init__(self, branches: nn.Module, chs: int, *, scale: float = 1.0,
                 act_layer: Callable[[], nn.Module] | None = nn.ReLU):
        super().__init__()
        self.scale = scale
        self.branches = branches
        self.proj = nn.Conv2d(geometry(branches, chs)[0], chs, 1)
        self.act = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.scale * self.proj(self.branches(x)))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def inception_resnet_a(in_chs: int, *, conv: ConvUnits, scale: float = 0.17, act: bool = True) -> ScaledResidual:
    """Inception-ResNet-v2's 35x35 residual block (Figure 16; TF-slim ``block35``): 1x1 | 1x1-3x3 | 1x1-3x3-3x3."""
    branches = inception_module(
        branch(conv, in_chs, (1, 32)),
        branch(conv, in_chs, (1, 32), (3, 32)),
        branch(conv, in_chs, (1, 32), (3, 48), (3, 64)),
    )
    return ScaledResidual(branches, in_chs, scale=scale, act_layer=conv.act_layer if act else None)


def inception_resnet_b(in_chs: int, *, conv: ConvUnits, scale: float = 0.10, act: bool = True) -> ScaledResidual:
    """Inception-ResNet-v2's 17x17 residual block (Figure 17; TF-slim ``block17``): 1x1 | 1x1-1x7-7x1."""
    branches = inception_module(
        branch(conv, in_chs, (1, 192)),
        branch(conv, in_chs, (1, 128), ((1, 7), 160), ((7, 1), 192)),
    )
    return ScaledResidual(branches, in_chs, scale=scale, act_layer=conv.act_layer if act else None)


def inception_resnet_c(in_chs: int, *, conv: ConvUnits, scale: float = 0.20, act: bool = True) -> ScaledResidual:
    """Inception-ResNet-v2's 8x8 residual block (Figure 19; TF-slim ``block8``): 1x1 | 1x1-1x3-3x1."""
    branches = inception_module(
        branch(conv, in_chs, (1, 192)),
        branch(conv, in_chs, (1, 192), ((1, 3), 224), ((3, 1), 256)),
    )
    return ScaledResidual(branches, in_chs, scale=scale, act_layer=conv.act_layer if act else None)


def reduction_resnet_b(in_chs: int, *, conv: ConvUnits) -> ConcatBranches:
    """Inception-ResNet-v2's 17x17 to 8x8 reduction (Figure 18; TF-slim ``mixed_7a``).

    1x1-3x3/2 | 1x1-3x3/2 | 1x1-3x3-3x3/2 | max-pool/2.
    """
    return inception_module(
        branch(conv, in_chs, (1, 256), (3, 384, 2, VALID)),
        branch(conv, in_chs, (1, 256), (3, 288, 2, VALID)),
        branch(conv, in_chs, (1, 256), (3, 288), (3, 320, 2, VALID)),
        branch(conv, in_chs, nn.MaxPool2d(3, 2)),
    )


# block name in a table row -> function(in_chs, *, conv, **options)
INCEPTION_BLOCKS: dict[str, Callable[..., nn.Module]] = {
    "inception_5x5": inception_5x5, "inception_3x3": inception_3x3, "inception_7x7": inception_7x7,
    "inception_v3_e": inception_v3_e, "inception_v4_c": inception_v4_c, "reduction_a": reduction_a,
    "reduction_b": reduction_b, "inception_resnet_a": inception_resnet_a, "inception_resnet_b": inception_resnet_b,
    "inception_resnet_c": inception_resnet_c, "reduction_resnet_b": reduction_resnet_b,
}


def geometry(module: nn.Module, in_chs: int) -> tuple[int, int]:
    """``(out_chs, stride)`` of a block made of convolutions, pools, branches and residual units."""
    if isinstance(module, nn.Conv2d):
        return module.out_channels, module.stride[0]
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride
        return in_chs, stride if isinstance(stride, int) else stride[0]
    if isinstance(module, ConcatBranches):
        shapes = [geometry(b, in_chs) for b in module]
        return sum(chs for chs, _ in shapes), shapes[0][1]
    if isinstance(module, nn.Sequential):
        stride = 1
        for layer in module:
            in_chs, step = geometry(layer, in_chs)
            stride *= step
        return in_chs, stride
    return in_chs, 1  # norms, activations and residual units keep the shape


def table_block(*, block: str, in_chs: int, out_chs: int, stride: int, **options: Any) -> nn.Module:
    """The block of one Inception table row, checked against the row's ``out_chs`` and ``stride``.

    Raises:
        InceptionConfigError: an unknown block name, or a block whose output differs from the row.
    """
    try:
        function = INCEPTION_BLOCKS[block]
    except KeyError:
        raise InceptionConfigError(f"unknown Inception block {block!r}; known: {', '.join(INCEPTION_BLOCKS)}") \
            from None
    module = function(in_chs, **options)
    got = geometry(module, in_chs)
    if got != (out_chs, stride):
        raise InceptionConfigError(f"{block} on {in_chs} channels gives {got[0]} channels at stride {got[1]}, but "
                                   f"its table row says {out_chs} at stride {stride}")
    return module


# -- Xception blocks --------------------------------------------------------------------------------------
class XceptionBlock(nn.Module):
    """A stack of separable convolutions with an optional shortcut: ``stack(pre(x)) + shortcut(pre(x))``.

    ``pre`` is the pre-activation (norm + activation) of the pre-activation variants, else absent;
    ``shortcut`` is ``None`` for blocks without a residual connection, ``nn.Identity`` when the shape is kept,
    else a strided 1x1 projection.
    """

    def __init__(self, stack: nn.Sequential, shortcut: nn.Module | None, *, pre: nn.Module | None = None,
                 drop_path_rate: float = 0.0):
        super().__init__()
        self.pre = pre if pre is not None else nn.Identity()
        self.stack = stack
        self.shortcut = shortcut
        self.drop_path = StochasticDepth(drop_path_rate) if drop_path_rate and shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        out = self.stack(x)
        if self.shortcut is None:
            return out
        return self.drop_path(out) + self.shortcut(x)


def separable_conv(conv: ConvUnits, in_chs: int, out_chs: int, *, stride: int = 1, dw_norm: bool = True,
                   act: bool = False, padding=None) -> nn.Sequential:
    """Depthwise 3x3 (``dw``) then pointwise 1x1 (``pw``) convolution units.

    Args:
        dw_norm: a norm after the depthwise convolution too (aligned Xception) or only after the pointwise one
            (Chollet's Xception).
        act: an activation after each norm.
        padding: padding of the depthwise convolution (``None`` keeps the size; ``"same"`` TensorFlow's).
    """
    return nn.Sequential(OrderedDict(
        dw=conv(3, in_chs, in_chs, act and dw_norm, stride=stride, padding=padding, groups=in_chs,
                norm_layer=nn.BatchNorm2d if dw_norm else None),
        pw=conv(1, in_chs, out_chs, act),
    ))


def xception_block(in_chs: int, out_chs: int, stride: int = 1, *, conv: ConvUnits, widths: Sequence[int] | None = None,
                   first_act: bool = True, inner_act: bool = False,
                   skip: bool = True, pool_stride: bool = False, dw_norm: bool = True, padding=None,
                   drop_path_rate: float = 0.0) -> XceptionBlock:
    """An Xception block: separable convolutions ``conv1``, ``conv2``, ... each after an activation ``act<i>``.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        stride: spatial reduction of the block.
        conv: the model's units.
        widths: output channels of each separable convolution, ending with ``out_chs``; default three of
            ``out_chs``.
        first_act: start with an activation (Chollet's first entry block does not).
        inner_act: put the activations after every norm inside the separable convolutions instead of before
            them (the aligned exit flow's last block; Chollet's exit convolutions).
        skip: add the shortcut (identity, or a strided 1x1 conv unit when the shape changes).
        pool_stride: reduce with a 3x3/2 max-pool after the stack (Chollet) instead of a strided last depthwise
            convolution (aligned).
        dw_norm: see :func:`separable_conv`.
        padding: depthwise padding (``"same"`` for TensorFlow's; default keeps the size symmetrically).
        drop_path_rate: stochastic depth of the residual branch.
    """
    widths = _widths(out_chs, widths)
    layers: list[tuple[str, nn.Module]] = []
    for i, width in enumerate(widths, 1):
        if not inner_act and (i > 1 or first_act):
            layers.append((f"act{i}", conv.act_layer()))
        strided = i == len(widths) and not pool_stride
        layers.append((f"conv{i}", separable_conv(conv, in_chs if i == 1 else widths[i - 2], width,
                                                  stride=stride if strided else 1, dw_norm=dw_norm,
                                                  act=inner_act, padding=padding)))
    if pool_stride and stride > 1:
        layers.append(("pool", nn.MaxPool2d(3, stride, 1)))
    shortcut = None
    if skip:
        shortcut = nn.Identity() if stride == 1 and widths[-1] == in_chs else \
            conv(1, in_chs, widths[-1], False, stride=stride)
    return XceptionBlock(nn.Sequential(OrderedDict(layers)), shortcut, drop_path_rate=drop_path_rate)


def preact_xception_block(in_chs: int, out_chs: int, stride: int = 1, *, conv: ConvUnits,
                          widths: Sequence[int] | None = None, skip: bool = True, padding=None,
                          drop_path_rate: float = 0.0) -> XceptionBlock:
    """A pre-activation aligned Xception block (timm ``xception41p``/``xception65p``).

    The block normalises and activates its input once (``pre``: shared with the shortcut), then runs
    separable convolutions ``conv1`` (depthwise, pointwise), ``conv2`` and ``conv3`` (norm, activation,
    depthwise, pointwise: ``dw`` is a ``revnorm`` conv unit). The shortcut is a plain strided 1x1 convolution
    when the shape changes. Arguments as :func:`xception_block`.
    """
    widths = _widths(out_chs, widths)
    layers = []
    for i, width in enumerate(widths, 1):
        chs = in_chs if i == 1 else widths[i - 2]
        strided = stride if i == len(widths) else 1
        dw = conv(3, chs, chs, i > 1, stride=strided, padding=padding, groups=chs, revnorm=True,
                  norm_layer=nn.BatchNorm2d if i > 1 else None)
        layers.append((f"conv{i}", nn.Sequential(OrderedDict(dw=dw, pw=conv(1, chs, width, False, norm_layer=None)))))
    shortcut = None
    if skip:
        shortcut = nn.Identity() if stride == 1 and widths[-1] == in_chs else \
            conv(1, in_chs, widths[-1], False, stride=stride, norm_layer=None)
    return XceptionBlock(nn.Sequential(OrderedDict(layers)), shortcut, pre=conv.norm_act(in_chs),
                         drop_path_rate=drop_path_rate)


def _widths(out_chs: int, widths: Sequence[int] | None) -> tuple[int, ...]:
    if widths is None:
        return (out_chs,) * 3
    if not widths or widths[-1] != out_chs:
        raise InceptionConfigError(f"Xception block widths {tuple(widths)} must end with its out_chs {out_chs}")
    return tuple(widths)
