"""The ResNet family: ResNet, ResNeXt, Wide ResNet, SE-ResNet/SE-ResNeXt and Res2Net/Res2NeXt.

Papers: He et al. 2016 (arXiv:1512.03385), Xie et al. 2017 (arXiv:1611.05431), Zagoruyko & Komodakis 2016
(arXiv:1605.07146), Hu et al. 2018 (arXiv:1709.01507), Gao et al. 2021 (arXiv:1904.01169), and the stem and
downsample variants of He et al. 2019 (arXiv:1812.01187).

Implementations matched output for output in the project's test suite:
``torchvision.models.resnet`` (torchvision 0.29), ``timm.models.resnet`` / ``timm.models.res2net`` and the
legacy ``timm.models.senet`` (timm 1.0). Their checkpoints load through the key maps in
:mod:`mhub_resnet.convert`.

Three levels, as in Metalhead 0.8:
- high: :func:`ResNet`, :func:`ResNeXt`, :func:`WideResNet`, :func:`SEResNet`, :func:`SEResNeXt`,
  :func:`Res2Net`, :func:`Res2NeXt` (a depth is required; ``pretrained``, ``in_chans``, ``num_classes``);
- mid: :func:`resnet`, every option of the family;
- registry builders: one function per registered name (``resnext101_32x8d(...)``), built from
  :data:`mhub_resnet.configs.MODELS` by :func:`mhub.families.registry_builder`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

import mhub
from mhub import ConfigError
from mhub._model import BackboneClassifier
from mhub.builders import BlockBuilder, Rule, build_stages, resnet_stride
from mhub.families import config_name, registry_builder
from mhub.layers import (
    DropBlock,
    StochasticDepth,
    conv_norm,
    create_classifier,
    efficient_squeeze_excite,
    squeeze_excite,
)

from . import configs

LayerFactory = Callable[..., nn.Module]


class ResNetConfigError(ConfigError):
    """An unknown or missing ResNet configuration (the message lists the valid ones)."""


# -- named layer choices ---------------------------------------------------------------------------
ATTN_LAYERS: dict[str, LayerFactory] = {
    "se": squeeze_excite,  # timm's SEModule: width make_divisible(chs / 16, 8)
    "se_exact": partial(squeeze_excite, rd_divisor=1),  # Caffe SENet: width chs // 16
    "ese": efficient_squeeze_excite,
}


def _avg_aa(stride: int) -> nn.Module:
    return nn.AvgPool2d(2, stride)


AA_LAYERS: dict[str, Callable[[int], nn.Module]] = {"avg": _avg_aa}
STEM_TYPES = ("default", "deep", "deep_wide", "deep_tiered")
STEM_POOLS = ("max", "max_ceil", "avg")
DOWNSAMPLE_TYPES = ("conv", "avg", "max")


def _choose(value, table: dict, what: str):
    if value is None or callable(value):
        return value
    try:
        return table[value]
    except KeyError:
        raise ResNetConfigError(f"unknown {what} {value!r}; expected one of {', '.join(table)} or a callable") \
            from None


# -- blocks ----------------------------------------------------------------------------------------
def make_shortcut(kind: str, in_chs: int, out_chs: int, stride: int, *, norm_layer: LayerFactory = nn.BatchNorm2d,
                  kernel_size: int = 1) -> nn.Module:
    """The residual shortcut: identity, or a projection when the shape changes.

    Args:
        kind: ``"conv"`` (strided ``kernel_size`` conv + norm, ResNet-B), ``"avg"`` (2x2 average pool, then
            1x1 conv + norm, ResNet-D) or ``"max"`` (2x2 max pool, then 1x1 conv + norm).
        in_chs: input channels.
        out_chs: output channels.
        stride: spatial reduction.
        norm_layer: normalisation after the projection.
        kernel_size: kernel of the ``"conv"`` projection when strided.

    Returns:
        ``nn.Identity`` when ``stride == 1`` and the widths agree, else a module with children
        ``conv``/``norm`` (``pool`` first for the pooled kinds).
    """
    if kind not in DOWNSAMPLE_TYPES:
        raise ResNetConfigError(f"unknown downsample {kind!r}; expected one of {', '.join(DOWNSAMPLE_TYPES)}")
    if stride == 1 and in_chs == out_chs:
        return nn.Identity()
    if kind == "conv":
        return conv_norm(kernel_size if stride > 1 else 1, in_chs, out_chs, None, norm_layer=norm_layer,
                         stride=stride, bias=False)
    layers: list[tuple[str, nn.Module]] = []
    if stride > 1:
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if kind == "avg" else \
            nn.MaxPool2d(2, stride, ceil_mode=True)
        layers.append(("pool", pool))
    layers += list(conv_norm(1, in_chs, out_chs, None, norm_layer=norm_layer, bias=False).named_children())
    return nn.Sequential(OrderedDict(layers))


class _ResidualBlock(nn.Module):
    """Shared parts: shortcut, attention, drop path and the post-addition activation."""

    expansion = 1

    def _finish(self, in_chs: int, out_chs: int, stride: int, *, act_layer, norm_layer, attn_layer, downsample,
                down_kernel_size, revnorm, drop_path_rate, drop_block_rate, drop_block_size) -> None:
        self.attn = attn_layer(out_chs) if attn_layer is not None else nn.Identity()
        self.drop_path = StochasticDepth(drop_path_rate) if drop_path_rate else nn.Identity()
        self.downsample = make_shortcut(downsample, in_chs, out_chs, stride, norm_layer=norm_layer,
                                        kernel_size=down_kernel_size)
        # Pre-activation (revnorm) blocks normalise inside the branch and add without an activation.
        self.act = nn.Identity() if revnorm else act_layer()
        self.drop_block = DropBlock(drop_block_rate, drop_block_size) if drop_block_rate else nn.Identity()

    def _last_norm(self) -> nn.Module:
        raise NotImplementedError

    def zero_init_last(self) -> None:
        """Zero the last normalisation's scale so the block starts as the identity (Goyal et al. 2017)."""
        norm = self._last_norm()
        if getattr(norm, "weight", None) is not None:
            nn.init.zeros_(norm.weight)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convolutions (ResNet-18/34).

    Args:
        in_chs, out_chs, stride: the block's widths and spatial reduction.
        act_layer, norm_layer: activation and normalisation factories.
        attn_layer: ``chs -> module`` applied to the branch output (SE), or ``None``.
        aa_layer: ``stride -> module`` anti-aliasing pool; strided convs then run at stride 1 before it.
        downsample, down_kernel_size: shortcut projection (see :func:`make_shortcut`).
        revnorm: pre-activation order (norm, act, conv) in the branch.
        attn_after_act: apply the activation before the attention (Caffe SENet basic blocks).
        drop_path_rate, drop_block_rate, drop_block_size: regularisation of this block.
    """

    expansion = 1

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, *, cardinality: int = 1, base_width: int = 64,
                 reduce_first: int = 1, act_layer: LayerFactory = nn.ReLU, norm_layer: LayerFactory = nn.BatchNorm2d,
                 attn_layer: LayerFactory | None = None, aa_layer: Callable[[int], nn.Module] | None = None,
                 downsample: str = "conv", down_kernel_size: int = 1, revnorm: bool = False,
                 attn_after_act: bool = False, stride_in_1x1: bool = False, drop_path_rate: float = 0.0,
                 drop_block_rate: float = 0.0, drop_block_size: int | None = None):
        super().__init__()
        if cardinality != 1 or base_width != 64:
            raise ResNetConfigError("BasicBlock supports only cardinality=1 and base_width=64")
        first = out_chs // reduce_first
        use_aa = aa_layer is not None and stride > 1
        unit = partial(conv_norm, norm_layer=norm_layer, revnorm=revnorm, bias=False)
        self.conv1 = unit(3, in_chs, first, act_layer, stride=1 if use_aa else stride)
        self.aa = aa_layer(stride) if use_aa else nn.Identity()
        self.conv2 = unit(3, first, out_chs, act_layer if revnorm or attn_after_act else None)
        self._finish(in_chs, out_chs, stride, act_layer=act_layer, norm_layer=norm_layer, attn_layer=attn_layer,
                     downsample=downsample, down_kernel_size=down_kernel_size, revnorm=revnorm,
                     drop_path_rate=drop_path_rate, drop_block_rate=drop_block_rate, drop_block_size=drop_block_size)

    def _last_norm(self) -> nn.Module:
        return self.conv2.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        out = self.aa(self.drop_block(self.conv1(x)))
        out = self.drop_path(self.attn(self.conv2(out)))
        return self.act(out + shortcut)


class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand by 4 (ResNet-50 and deeper, ResNeXt, Wide ResNet).

    The 3x3 width is ``floor(planes * base_width / 64) * cardinality`` with ``planes = out_chs / 4``.
    ``stride_in_1x1`` puts the stride on the first 1x1 conv (original Caffe ResNet and SENet) instead of the
    3x3 (torchvision's "ResNet v1.5"). Other arguments as :class:`BasicBlock`.
    """

    expansion = 4

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, *, cardinality: int = 1, base_width: int = 64,
                 reduce_first: int = 1, act_layer: LayerFactory = nn.ReLU, norm_layer: LayerFactory = nn.BatchNorm2d,
                 attn_layer: LayerFactory | None = None, aa_layer: Callable[[int], nn.Module] | None = None,
                 downsample: str = "conv", down_kernel_size: int = 1, revnorm: bool = False,
                 attn_after_act: bool = False, stride_in_1x1: bool = False, drop_path_rate: float = 0.0,
                 drop_block_rate: float = 0.0, drop_block_size: int | None = None):
        super().__init__()
        planes = out_chs // self.expansion
        width = int(math.floor(planes * (base_width / 64)) * cardinality)
        first = width // reduce_first
        use_aa = aa_layer is not None and stride > 1 and not stride_in_1x1
        unit = partial(conv_norm, norm_layer=norm_layer, revnorm=revnorm, bias=False)
        self.conv1 = unit(1, in_chs, first, act_layer, stride=stride if stride_in_1x1 else 1)
        self.conv2 = unit(3, first, width, act_layer, stride=1 if use_aa or stride_in_1x1 else stride,
                          groups=cardinality)
        self.aa = aa_layer(stride) if use_aa else nn.Identity()
        self.conv3 = unit(1, width, out_chs, act_layer if revnorm or attn_after_act else None)
        self._finish(in_chs, out_chs, stride, act_layer=act_layer, norm_layer=norm_layer, attn_layer=attn_layer,
                     downsample=downsample, down_kernel_size=down_kernel_size, revnorm=revnorm,
                     drop_path_rate=drop_path_rate, drop_block_rate=drop_block_rate, drop_block_size=drop_block_size)

    def _last_norm(self) -> nn.Module:
        return self.conv3.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        out = self.conv1(x)
        out = self.aa(self.drop_block(self.conv2(out)))
        out = self.drop_path(self.attn(self.conv3(out)))
        return self.act(out + shortcut)


class Res2Block(_ResidualBlock):
    """Res2Net bottleneck: the 3x3 stage splits into ``scale`` groups of ``width`` channels, each 3x3 conv
    also receiving the previous group's output (hierarchical residual connections).

    In a block that changes shape, the groups are convolved independently and the last group is
    average-pooled instead of convolved (as the reference implementation does). ``width`` is
    ``floor(planes * base_width / 64) * cardinality``. Other arguments as :class:`BasicBlock`.
    """

    expansion = 4

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, *, cardinality: int = 1, base_width: int = 26,
                 scale: int = 4, reduce_first: int = 1, act_layer: LayerFactory = nn.ReLU,
                 norm_layer: LayerFactory = nn.BatchNorm2d, attn_layer: LayerFactory | None = None,
                 aa_layer: Callable[[int], nn.Module] | None = None, downsample: str = "conv",
                 down_kernel_size: int = 1, revnorm: bool = False, attn_after_act: bool = False,
                 stride_in_1x1: bool = False, drop_path_rate: float = 0.0, drop_block_rate: float = 0.0,
                 drop_block_size: int | None = None):
        super().__init__()
        if aa_layer is not None or stride_in_1x1 or reduce_first != 1:
            raise ResNetConfigError("Res2Block supports neither aa_layer, stride_in_1x1 nor reduce_first")
        planes = out_chs // self.expansion
        self.width = int(math.floor(planes * (base_width / 64))) * cardinality
        self.scale = scale
        unit = partial(conv_norm, norm_layer=norm_layer, revnorm=revnorm, bias=False)
        self.conv1 = unit(1, in_chs, self.width * scale, act_layer)
        self.convs = nn.ModuleList(
            unit(3, self.width, self.width, act_layer, stride=stride, groups=cardinality)
            for _ in range(max(1, scale - 1))
        )
        self.is_first = stride > 1 or in_chs != out_chs
        self.pool = nn.AvgPool2d(3, stride, padding=1) if self.is_first and scale > 1 else nn.Identity()
        self.conv3 = unit(1, self.width * scale, out_chs, act_layer if revnorm or attn_after_act else None)
        self._finish(in_chs, out_chs, stride, act_layer=act_layer, norm_layer=norm_layer, attn_layer=attn_layer,
                     downsample=downsample, down_kernel_size=down_kernel_size, revnorm=revnorm,
                     drop_path_rate=drop_path_rate, drop_block_rate=drop_block_rate, drop_block_size=drop_block_size)

    def _last_norm(self) -> nn.Module:
        return self.conv3.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        groups = torch.split(self.conv1(x), self.width, 1)
        outs = []
        previous = None
        for i, conv in enumerate(self.convs):
            group = groups[i] if previous is None or self.is_first else previous + groups[i]
            previous = conv(group)
            outs.append(previous)
        if self.scale > 1:
            outs.append(self.pool(groups[-1]))
        out = self.drop_block(torch.cat(outs, 1))
        out = self.drop_path(self.attn(self.conv3(out)))
        return self.act(out + shortcut)


BLOCKS: dict[str, type[_ResidualBlock]] = {"basic": BasicBlock, "bottleneck": Bottleneck, "res2": Res2Block}


# -- stem ------------------------------------------------------------------------------------------
def make_stem(stem_type: str, in_chans: int, stem_width: int | None = None, *, act_layer: LayerFactory = nn.ReLU,
              norm_layer: LayerFactory = nn.BatchNorm2d, pool: str | Callable[[], nn.Module] | None = "max",
              ) -> tuple[nn.Sequential, int]:
    """The stem: stride 4 from the input to the first stage.

    Args:
        stem_type: ``"default"`` (7x7/2 conv, ``stem_width`` default 64), ``"deep"`` (three 3x3 convs of
            ``stem_width``, ``stem_width``, ``2 * stem_width``; default 32: ResNet-C/D),
            ``"deep_wide"`` (the same with ``stem_width`` default 64: ResNet-S/E) or ``"deep_tiered"``
            (``3 * stem_width // 4``, ``stem_width``, ``2 * stem_width``; ResNet-T).
        in_chans: input channels.
        stem_width: see ``stem_type``.
        act_layer, norm_layer: activation and normalisation.
        pool: ``"max"`` (3x3/2, padding 1), ``"max_ceil"`` (3x3/2, no padding, ceil mode: Caffe),
            ``"avg"`` (2x2/2 average: anti-aliased models), a module factory, or ``None``.

    Returns:
        ``(stem, out_chs)``; the stem's children are ``0``, ``1``, ... (conv units) then ``pool``.
    """
    unit = partial(conv_norm, act_layer=act_layer, norm_layer=norm_layer, bias=False)
    if stem_type == "default":
        out = stem_width or 64
        convs = [unit(7, in_chans, out, stride=2)]
    elif stem_type in ("deep", "deep_wide", "deep_tiered"):
        width = stem_width or (64 if stem_type == "deep_wide" else 32)
        first = 3 * (width // 4) if stem_type == "deep_tiered" else width
        out = 2 * width
        convs = [unit(3, in_chans, first, stride=2), unit(3, first, width), unit(3, width, out)]
    else:
        raise ResNetConfigError(f"unknown stem_type {stem_type!r}; expected one of {', '.join(STEM_TYPES)}")
    layers = [(str(i), conv) for i, conv in enumerate(convs)]
    if pool == "max":
        layers.append(("pool", nn.MaxPool2d(3, 2, padding=1)))
    elif pool == "max_ceil":
        layers.append(("pool", nn.MaxPool2d(3, 2, ceil_mode=True)))
    elif pool == "avg":
        layers.append(("pool", nn.AvgPool2d(2, 2)))
    elif callable(pool):
        layers.append(("pool", pool()))
    elif pool is not None:
        raise ResNetConfigError(f"unknown stem_pool {pool!r}; expected one of {', '.join(STEM_POOLS)}, "
                                "a callable or None")
    return nn.Sequential(OrderedDict(layers)), out


# -- mid level -------------------------------------------------------------------------------------
def resnet(block: str | type[nn.Module], layers: Sequence[int], *, num_classes: int = 1000, in_chans: int = 3,
           cardinality: int = 1, base_width: int = 64, widths: Sequence[int] = (64, 128, 256, 512),
           stem_type: str = "default", stem_width: int | None = None, stem_pool: str | Callable | None = None,
           downsample: str = "conv", down_kernel_size: int = 1, attn_layer: str | LayerFactory | None = None,
           aa_layer: str | Callable[[int], nn.Module] | None = None, act_layer: LayerFactory = nn.ReLU,
           norm_layer: LayerFactory = nn.BatchNorm2d, revnorm: bool = False, drop_path_rate: float = 0.0,
           drop_block_rate: float = 0.0, drop_block_sizes: Sequence[int | None] = (None, None, 5, 3),
           zero_init_last: bool = True, dropout: float | None = None, hidden: int | None = None,
           pool: str = "avg", stride_fn: Rule = resnet_stride, **block_kwargs: Any) -> BackboneClassifier:
    """Build any member of the family.

    Args:
        block: ``"basic"``, ``"bottleneck"``, ``"res2"`` or a block class taking
            ``(in_chs, out_chs, stride, **kwargs)`` with an ``expansion`` attribute.
        layers: blocks per stage.
        num_classes: classifier outputs (0: no final linear layer).
        in_chans: input channels.
        cardinality: groups of the 3x3 convolutions (ResNeXt).
        base_width: width per group at the 64-plane stage (64 ResNet, 128 Wide ResNet, 26 Res2Net).
        widths: planes per stage before the block expansion.
        stem_type, stem_width: see :func:`make_stem`.
        stem_pool: see :func:`make_stem`; default ``"max"``, or ``"avg"`` when ``aa_layer`` is set.
        downsample: shortcut projection, ``"conv"``, ``"avg"`` or ``"max"`` (see :func:`make_shortcut`).
        down_kernel_size: kernel of the strided ``"conv"`` projection.
        attn_layer: ``"se"``, ``"se_exact"``, ``"ese"`` or a ``chs -> module`` factory, after the last norm.
        aa_layer: ``"avg"`` or a ``stride -> module`` factory for anti-aliased downsampling.
        act_layer, norm_layer: activation and normalisation factories.
        revnorm: pre-activation blocks (norm, act, conv); the backbone then ends with a norm and activation.
        drop_path_rate: stochastic depth reached by the last block (linear in the global block index).
        drop_block_rate: DropBlock rate reached by the last block (linear in the global block index).
        drop_block_sizes: DropBlock block size per stage (``None``: no DropBlock in that stage).
        zero_init_last: zero the last norm scale of each residual branch.
        dropout: classifier dropout (``None``: no dropout module; see :func:`mhub.layers.create_classifier`).
        hidden: optional hidden layer width of the classifier.
        pool: classifier global pooling.
        stride_fn: ``(stage_idx, block_idx) -> stride`` rule (default: halve at each stage but the first).
        **block_kwargs: passed to every block (``scale`` for Res2Net, ``reduce_first``, ``stride_in_1x1``,
            ``attn_after_act``).

    Returns:
        A :class:`mhub.BackboneClassifier`; the backbone has output stride 32 with the default rules.
    """
    block_cls = BLOCKS.get(block) if isinstance(block, str) else block
    if block_cls is None:
        raise ResNetConfigError(f"unknown block {block!r}; expected one of {', '.join(BLOCKS)} or a class")
    attn = _choose(attn_layer, ATTN_LAYERS, "attn_layer")
    aa = _choose(aa_layer, AA_LAYERS, "aa_layer")
    if stem_pool is None:
        stem_pool = "avg" if aa is not None else "max"
    stem, stem_chs = make_stem(stem_type, in_chans, stem_width, act_layer=act_layer, norm_layer=norm_layer,
                               pool=stem_pool)
    expansion = block_cls.expansion
    builder = BlockBuilder(
        block_cls, list(layers), in_chs=stem_chs,
        width_fn=lambda stage_idx, block_idx: widths[stage_idx] * expansion, stride_fn=stride_fn,
        drop_path_rate=drop_path_rate, drop_block_rate=drop_block_rate, drop_block_sizes=drop_block_sizes,
        block_kwargs=dict(cardinality=cardinality, base_width=base_width, act_layer=act_layer,
                          norm_layer=norm_layer, attn_layer=attn, aa_layer=aa, downsample=downsample,
                          down_kernel_size=down_kernel_size, revnorm=revnorm, **block_kwargs),
    )
    parts: list[tuple[str, nn.Module]] = [("stem", stem), ("stages", build_stages(builder))]
    out_chs = builder.out_chs(len(layers) - 1, layers[-1] - 1)
    if revnorm:
        parts += [("norm", norm_layer(out_chs)), ("act", act_layer())]
    backbone = nn.Sequential(OrderedDict(parts))
    classifier = create_classifier(out_chs, num_classes, pool=pool, dropout=dropout, hidden=hidden)
    model = BackboneClassifier(backbone, classifier, feature_info=feature_points(stem, builder, revnorm))
    _init_weights(model, zero_init_last)
    return model


def feature_points(stem: nn.Sequential, builder: BlockBuilder, revnorm: bool = False) -> list[dict[str, Any]]:
    """timm's ``features_only`` levels: the stem's last activation (stride 2), then every stage's output.

    A pre-activation (``revnorm``) network's last level is the final norm and activation, as in timm's ResNetV2.
    """
    convs = [name for name in stem._modules if name != "pool"]
    stem_stride = 4 if "pool" in stem._modules else 2
    last = len(builder.block_repeats) - 1
    points = [{"module": f"backbone.stem.{convs[-1]}", "num_chs": builder.in_chs, "reduction": 2}]
    for stage_idx, repeats in enumerate(builder.block_repeats):
        module = "backbone.act" if revnorm and stage_idx == last else f"backbone.stages.{stage_idx}"
        points.append({"module": module, "num_chs": builder.out_chs(stage_idx, repeats - 1),
                       "reduction": stem_stride * builder.reduction(stage_idx)})
    return points


def _init_weights(model: nn.Module, zero_init_last: bool) -> None:
    # He-normal (fan_out) convolutions and unit norms, as torchvision and timm initialise ResNets.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_last:
        for module in model.modules():
            if isinstance(module, _ResidualBlock):
                module.zero_init_last()


# -- registry builders -----------------------------------------------------------------------------
def from_config(name: str, **kwargs: Any) -> BackboneClassifier:
    """Build the registered architecture ``name`` (:data:`mhub_resnet.configs.MODELS`); ``kwargs`` override.

    Raises:
        ResNetConfigError: an unknown name (the valid ones are listed).
    """
    try:
        config = configs.config(name)
    except KeyError as error:
        raise ResNetConfigError(error.args[0]) from None
    return resnet(**{**config, **kwargs})


# One module-level builder per registered name, so "mhub_resnet.model:<name>" resolves lazily.
for _name in configs.MODELS:
    globals()[_name] = registry_builder(_name, resnet, configs.config(_name))
del _name


# -- high level ------------------------------------------------------------------------------------
_config_name = partial(config_name, error=ResNetConfigError)
_DEPTHS = (18, 34, 50, 101, 152)


def ResNet(depth: int | None = None, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
           **kwargs: Any) -> nn.Module:
    """ResNet-``depth`` (torchvision layout), e.g. ``ResNet(50)``.

    Args:
        depth: 18, 34, 50, 101 or 152 (required).
        pretrained: load the registry's default weights (``mhub.create(f"resnet{depth}", pretrained=True)``).
        in_chans: input channels.
        num_classes: classifier outputs (default 1000, or the weights' classes when pretrained).
        **kwargs: options of :func:`resnet` (stochastic depth, DropBlock, ...).

    Raises:
        ResNetConfigError: no depth, or one without a configuration.
    """
    name = _config_name("ResNet", depth, {d: f"resnet{d}" for d in _DEPTHS}, what="a depth")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def WideResNet(depth: int | None = None, *, pretrained: bool = False, in_chans: int = 3,
               num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Wide ResNet-``depth``-2 (bottlenecks twice as wide), e.g. ``WideResNet(50)``; depth 50 or 101."""
    name = _config_name("WideResNet", depth, {d: f"wide_resnet{d}_2" for d in (50, 101)}, what="a depth")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def ResNeXt(depth: int | None = None, *, cardinality: int = 32, base_width: int = 4, pretrained: bool = False,
            in_chans: int = 3, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """ResNeXt-``depth`` ``cardinality`` x ``base_width``d, e.g. ``ResNeXt(101, cardinality=32, base_width=8)``.

    Configurations: (50, 32, 4), (101, 32, 8), (101, 64, 4).
    """
    names = {(d, c, w): f"resnext{d}_{c}x{w}d" for d, c, w in ((50, 32, 4), (101, 32, 8), (101, 64, 4))}
    name = _config_name("ResNeXt", (depth, cardinality, base_width), names, what="(depth, cardinality, base_width)")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def SEResNet(depth: int | None = None, *, pretrained: bool = False, in_chans: int = 3,
             num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """SE-ResNet-``depth`` (timm layout), e.g. ``SEResNet(50)``; depth 18, 34, 50, 101 or 152."""
    name = _config_name("SEResNet", depth, {d: f"seresnet{d}" for d in _DEPTHS}, what="a depth")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def SEResNeXt(depth: int | None = None, *, cardinality: int = 32, base_width: int = 4, pretrained: bool = False,
              in_chans: int = 3, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """SE-ResNeXt-``depth`` (timm layout), e.g. ``SEResNeXt(50)``.

    Configurations: (50, 32, 4), (101, 32, 4), (101, 32, 8), (101, 64, 4).
    """
    names = {(d, c, w): f"seresnext{d}_{c}x{w}d"
             for d, c, w in ((50, 32, 4), (101, 32, 4), (101, 32, 8), (101, 64, 4))}
    name = _config_name("SEResNeXt", (depth, cardinality, base_width), names,
                        what="(depth, cardinality, base_width)")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def Res2Net(depth: int | None = None, *, base_width: int = 26, scale: int = 4, pretrained: bool = False,
            in_chans: int = 3, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Res2Net-``depth`` ``base_width``w ``scale``s (timm layout), e.g. ``Res2Net(50, base_width=48, scale=2)``.

    Configurations: (50, 26, 4), (50, 26, 6), (50, 26, 8), (50, 48, 2), (50, 14, 8), (101, 26, 4).
    """
    names = {(d, w, s): f"res2net{d}_{w}w_{s}s"
             for d, w, s in ((50, 26, 4), (50, 26, 6), (50, 26, 8), (50, 48, 2), (50, 14, 8), (101, 26, 4))}
    name = _config_name("Res2Net", (depth, base_width, scale), names, what="(depth, base_width, scale)")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def Res2NeXt(depth: int | None = None, *, pretrained: bool = False, in_chans: int = 3,
             num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Res2NeXt-``depth`` (cardinality 8, base width 4, scale 4; timm layout): ``Res2NeXt(50)``."""
    name = _config_name("Res2NeXt", depth, {50: "res2next50"}, what="a depth")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)
