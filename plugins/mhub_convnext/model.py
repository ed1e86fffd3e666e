"""ConvNeXt and ConvMixer: convolutional networks with transformer-era design.

- ConvNeXt: Liu et al., "A ConvNet for the 2020s", CVPR 2022 (arXiv:2201.03545). Matched output for output with
  ``torchvision.models.convnext`` (torchvision 0.29) and ``timm.models.convnext`` (timm 1.0; its 1x1-convolution
  MLP variants atto ... nano compute the same function as our linear MLPs).
- ConvMixer: Trockman & Kolter, "Patches Are All You Need?", TMLR 2023 (arXiv:2201.09792); matches
  ``timm.models.convmixer``.

Checkpoints load through :mod:`mhub_convnext.convert`.

ConvNeXt layout: ``backbone.stem`` (4x4/4 convolution + LayerNorm2d), ``backbone.stages.<s>`` with
``downsample`` (LayerNorm2d + 2x2/2 convolution, stages 1-3) and ``blocks.<b>`` (:class:`ConvNeXtBlock`); the
backbone returns the stride-32 map. ``classifier``: ``pool``, ``flatten``, ``norm`` (LayerNorm), optional
``dropout``, ``fc``.

ConvMixer layout: ``backbone.stem`` (patch convolution, activation, BatchNorm), ``backbone.blocks.<i>``
(:class:`ConvMixerBlock`); ``classifier``: ``pool``, ``flatten``, optional ``dropout``, ``fc``.

Three levels, as in Metalhead 0.8:
- high: :func:`ConvNeXt` (``ConvNeXt("tiny")``), :func:`ConvMixer` (``ConvMixer(768, 32)``);
- mid: :func:`convnext` (stochastic depth, LayerScale, kernel size, dropout), :func:`convmixer`;
- low: the blocks, over :mod:`mhub.layers`.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

from torch import nn

import mhub
from mhub import ConfigError
from mhub._model import BackboneClassifier
from mhub.builders import linear_schedule
from mhub.families import config_name
from mhub.layers import LayerNorm2d, LayerScale, Mlp, StochasticDepth, conv_norm, create_classifier
from mhub.layers.conv_norm import LayerFactory
from mhub.layers.init import trunc_normal_init

from . import configs

LAYER_NORM = partial(nn.LayerNorm, eps=1e-6)  # ConvNeXt's LayerNorm epsilon (official code, torchvision, timm)
ACTIVATIONS: dict[str, LayerFactory] = {"gelu": nn.GELU, "relu": nn.ReLU}


class ConvNeXtConfigError(ConfigError):
    """An unknown or missing ConvNeXt / ConvMixer configuration (the message lists the valid ones)."""


# -- ConvNeXt --------------------------------------------------------------------------------------
class ConvNeXtBlock(nn.Module):
    """``x + drop_path(ls(mlp(norm(conv_dw(x)))))``: a 7x7 depthwise convolution, then a channels-last
    LayerNorm and an inverted-bottleneck MLP (4x) with a per-channel LayerScale.

    Args:
        dim: channels.
        kernel_size: depthwise kernel.
        mlp_ratio: MLP width over ``dim``.
        layer_scale: initial LayerScale value; ``None`` for none.
        drop_path_rate: stochastic depth of the residual branch.
        act_layer, norm_layer: MLP activation and (channels-last) normalisation factories.
    """

    def __init__(self, dim: int, *, kernel_size: int = 7, mlp_ratio: float = 4.0, layer_scale: float | None = 1e-6,
                 drop_path_rate: float = 0.0, act_layer: LayerFactory = nn.GELU, norm_layer: LayerFactory = LAYER_NORM):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = norm_layer(dim)
        self.mlp = Mlp(dim, int(mlp_ratio * dim), act_layer=act_layer)
        self.ls = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.drop_path = StochasticDepth(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x):
        branch = self.conv_dw(x).permute(0, 2, 3, 1)  # channels last for the norm, MLP and scale
        branch = self.ls(self.mlp(self.norm(branch))).permute(0, 3, 1, 2)
        return x + self.drop_path(branch)


def convnext(size: str | None = None, *, depths: tuple[int, ...] | None = None, dims: tuple[int, ...] | None = None,
             kernel_size: int = 7, mlp_ratio: float = 4.0, layer_scale: float | None = 1e-6,
             drop_path_rate: float = 0.0, drop_rate: float | None = None, act_layer: LayerFactory = nn.GELU,
             num_classes: int = 1000, in_chans: int = 3) -> BackboneClassifier:
    """Build a ConvNeXt.

    Args:
        size: a key of :data:`mhub_convnext.configs.CONVNEXT_SIZES` (``"atto"`` ... ``"xlarge"``); ``depths`` and
            ``dims`` override it.
        depths: blocks per stage.
        dims: channels per stage.
        kernel_size: depthwise kernel of every block.
        mlp_ratio: MLP width over the block's channels.
        layer_scale: initial LayerScale of every block (1e-6 as in the paper); ``None`` disables it.
        drop_path_rate: stochastic depth reached by the last block, linear in the global block index (the
            paper used 0.1 / 0.4 / 0.5 / 0.5 for tiny / small / base / large on ImageNet-1k; default off).
        drop_rate: classifier dropout (``None``: no dropout module).
        act_layer: MLP activation.
        num_classes: classifier outputs (0: the model returns the pooled, normalised features).
        in_chans: input channels.

    Returns:
        A :class:`mhub.BackboneClassifier` (layout in the module docstring).

    Raises:
        ConvNeXtConfigError: an unknown size, or neither a size nor both ``depths`` and ``dims`` (of equal length,
            every depth at least 1).
    """
    if size is not None:
        if size not in configs.CONVNEXT_SIZES:
            raise ConvNeXtConfigError(f"unknown ConvNeXt size {size!r}; valid: {', '.join(configs.CONVNEXT_SIZES)}")
        depths, dims = depths or configs.CONVNEXT_SIZES[size][0], dims or configs.CONVNEXT_SIZES[size][1]
    if not depths or not dims or len(depths) != len(dims) or min(depths) < 1:
        raise ConvNeXtConfigError("convnext needs a size, or depths (at least 1 each) and dims of equal length")
    stem = conv_norm(4, in_chans, dims[0], None, norm_layer=LayerNorm2d, stride=4, padding=0, bias=True)
    total, first = sum(depths), 0  # first: the global index of the stage's first block, for the drop-path schedule
    stages = []
    for stage_idx, (repeats, dim) in enumerate(zip(depths, dims)):
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        if stage_idx:
            parts["downsample"] = conv_norm(2, dims[stage_idx - 1], dim, None, norm_layer=LayerNorm2d, revnorm=True,
                                            stride=2, padding=0)
        parts["blocks"] = nn.Sequential(*(
            ConvNeXtBlock(dim, kernel_size=kernel_size, mlp_ratio=mlp_ratio, layer_scale=layer_scale,
                          drop_path_rate=linear_schedule(drop_path_rate, first + i, total), act_layer=act_layer)
            for i in range(repeats)))
        stages.append(nn.Sequential(parts))
        first += repeats
    backbone = nn.Sequential(OrderedDict(stem=stem, stages=nn.Sequential(*stages)))
    classifier = create_classifier(dims[-1], num_classes, norm_layer=LAYER_NORM, dropout=drop_rate)
    # timm's features_only levels: every stage's output, strides 4 to 32
    feature_info = [{"module": f"backbone.stages.{i}", "num_chs": dim, "reduction": 4 * 2 ** i}
                    for i, dim in enumerate(dims)]
    model = BackboneClassifier(backbone, classifier, feature_info=feature_info)
    # ConvNeXt's scheme (official code, torchvision, timm): truncated normal (std 0.02), zero bias
    trunc_normal_init(model, 0.02, types=(nn.Conv2d, nn.Linear))
    return model


# -- ConvMixer -------------------------------------------------------------------------------------
class ConvMixerBlock(nn.Module):
    """``pw(x + dw(x))``: a residual depthwise (spatial) mixing and a pointwise (channel) mixing, each a
    convolution followed by the activation and then BatchNorm (:func:`mhub.layers.conv_norm` children
    ``conv``, ``act``, ``norm``)."""

    def __init__(self, dim: int, kernel_size: int, act_layer: LayerFactory = nn.GELU):
        super().__init__()
        self.dw = conv_norm(kernel_size, dim, dim, act_layer, groups=dim, act_before_norm=True)
        self.pw = conv_norm(1, dim, dim, act_layer, act_before_norm=True)

    def forward(self, x):
        return self.pw(x + self.dw(x))


def convmixer(dim: int, depth: int, *, kernel_size: int = 9, patch_size: int = 7, act: str = "gelu",
              drop_rate: float | None = None, num_classes: int = 1000, in_chans: int = 3) -> BackboneClassifier:
    """Build a ConvMixer-``dim``/``depth``.

    Args:
        dim: channels throughout.
        depth: blocks.
        kernel_size: depthwise kernel (odd).
        patch_size: side and stride of the patch-embedding convolution.
        act: ``"gelu"`` or ``"relu"``.
        drop_rate: classifier dropout (``None``: no dropout module).
        num_classes: classifier outputs (0: the model returns the pooled features).
        in_chans: input channels.

    Raises:
        ConvNeXtConfigError: an unknown activation.
    """
    if act not in ACTIVATIONS:
        raise ConvNeXtConfigError(f"unknown ConvMixer activation {act!r}; valid: {', '.join(ACTIVATIONS)}")
    act_layer = ACTIVATIONS[act]
    stem = conv_norm(patch_size, in_chans, dim, act_layer, stride=patch_size, padding=0, act_before_norm=True)
    blocks = nn.Sequential(*(ConvMixerBlock(dim, kernel_size, act_layer) for _ in range(depth)))
    backbone = nn.Sequential(OrderedDict(stem=stem, blocks=blocks))
    # timm's features_only levels: every block's output at the patch stride, the last 3 by default
    feature_info = [{"module": f"backbone.blocks.{i}", "num_chs": dim, "reduction": patch_size} for i in range(depth)]
    return BackboneClassifier(backbone, create_classifier(dim, num_classes, dropout=drop_rate),
                              feature_info=feature_info, out_indices=3)


# -- high level ------------------------------------------------------------------------------------
def ConvNeXt(size: str | None = None, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
             **kwargs: Any) -> nn.Module:
    """ConvNeXt by size, e.g. ``ConvNeXt("tiny")`` (``convnext_tiny``).

    Args:
        size: ``"atto"``, ``"femto"``, ``"pico"``, ``"nano"``, ``"tiny"``, ``"small"``, ``"base"``, ``"large"``
            or ``"xlarge"`` (required).
        pretrained: load the registry's default weights.
        in_chans: input channels.
        num_classes: classifier outputs (default 1000, or the weights' classes when pretrained).
        **kwargs: options of :func:`convnext` (``drop_path_rate``, ``layer_scale``, ...).

    Raises:
        ConvNeXtConfigError: no size, or an unknown one.
    """
    name = config_name("ConvNeXt", size, {s: f"convnext_{s}" for s in configs.CONVNEXT_SIZES}, what="a size",
                       error=ConvNeXtConfigError)
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def ConvMixer(dim: int | None = None, depth: int | None = None, *, pretrained: bool = False, in_chans: int = 3,
              num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """ConvMixer-``dim``/``depth``, e.g. ``ConvMixer(768, 32)``.

    The registered pairs (768, 32), (1024, 20) and (1536, 20) come with their kernel and patch sizes and
    activation; other pairs are built by :func:`convmixer` (kernel 9, patch 7, GELU unless given) without
    weights.

    Raises:
        ConvNeXtConfigError: a missing ``dim`` or ``depth``, or ``pretrained`` for an unregistered pair.
    """
    registered = {(row[0], row[1]): name for name, row in configs.CONVMIXER.items()}
    valid = ", ".join(f"({d}, {n})" for d, n in registered)
    if dim is None or depth is None:
        raise ConvNeXtConfigError(f"ConvMixer has no default configuration; give dim and depth, e.g. {valid}")
    name = registered.get((dim, depth))
    if name is not None and not set(kwargs) & {"kernel_size", "patch_size", "act"}:
        return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)
    if pretrained:
        raise ConvNeXtConfigError(f"no pretrained ConvMixer({dim}, {depth}) with these options; registered: {valid}")
    return convmixer(dim, depth, num_classes=1000 if num_classes is None else num_classes, in_chans=in_chans,
                     **kwargs)
