"""MobileNet v1/v2/v3, MNASNet, EfficientNet v1/v2/Lite: one config-driven function and thin constructors.

Papers: see :data:`mhub_mobilenet.configs.PAPERS`. The networks match torchvision's ``mobilenetv2.py``,
``mobilenetv3.py``, ``mnasnet.py`` and ``efficientnet.py`` (same layer order, widths, squeeze-excite widths,
BatchNorm constants, parameter counts and, after ``torchvision.*`` conversion, outputs) and, for the names
torchvision lacks, timm's ``efficientnet.py`` / ``mobilenetv3.py`` generators (``tf_*`` variants use
TensorFlow ``SAME`` padding and BatchNorm epsilon 1e-3).

Three levels, as in Metalhead 0.8:

- high: :func:`MobileNetv1`, :func:`MobileNetv2`, :func:`MobileNetv3`, :func:`MNASNet`, :func:`EfficientNet`,
  :func:`EfficientNetv2`, :func:`EfficientNetLite` (no default configuration; ``pretrained``, ``in_chans``,
  ``num_classes``);
- mid: :func:`irnet` (config name + width/depth multipliers + options such as ``drop_path_rate``);
- low: the blocks in :mod:`mhub.layers.mbconv`, assembled through :class:`mhub.builders.BlockBuilder`.

Layout: ``backbone.stem`` (conv_norm), ``backbone.blocks.<i>`` (every block, numbered globally),
``backbone.head`` (1x1 conv_norm, absent in MobileNetV1), then ``classifier`` (pool, flatten, optional
``hidden`` + ``act``, dropout, ``fc``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from torch import nn

import mhub
from mhub import ConfigError
from mhub._model import BackboneClassifier
from mhub.builders import BlockBuilder, stage_strides, stage_widths
from mhub.families import config_name
from mhub.layers import (conv_norm, create_classifier, dwsep_conv, fused_mbconv, he_init, make_divisible, mbconv,
                         squeeze_excite)

from .configs import BLOCK_TYPES, NetConfig, get_config

ACT_LAYERS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "silu": nn.SiLU, "sigmoid": nn.Sigmoid,
              "hsigmoid": nn.Hardsigmoid}


def _torchvision_schedule(rate: float, index: int, total: int) -> float:
    # torchvision/timm: rate * index / total (the last block stays just below ``rate``)
    return rate * index / total


def _conv_block(kernel_size, in_chs, mid_chs, out_chs, act_layer, **kwargs) -> nn.Module:
    return fused_mbconv(kernel_size, in_chs, None, out_chs, act_layer, **kwargs)


def _dwsep_block(kernel_size, in_chs, mid_chs, out_chs, act_layer, **kwargs) -> nn.Module:
    return dwsep_conv(kernel_size, in_chs, out_chs, act_layer, **kwargs)


# block name in a config row -> factory(kernel_size, in_chs, mid_chs, out_chs, act_layer, *, stride, se_layer,
# eps, momentum, padding, drop_path_rate); extend with register_block
BLOCKS: dict[str, Callable[..., nn.Module]] = {
    "mbconv": mbconv, "fused": fused_mbconv, "conv": _conv_block, "dwsep": _dwsep_block,
}


def register_block(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``name`` usable as the block of a config row.

    CONTRIBUTING.md ("Adding an inverted-residual family or block type") shows a worked example.

    Args:
        name: the block name rows will use.
        factory: called as ``factory(kernel_size, in_chs, mid_chs, out_chs, act_layer, *, stride, se_layer,
            eps, momentum, padding, drop_path_rate)``; ``mid_chs`` is ``make_divisible(in_chs * e)``.
    """
    BLOCKS[name] = factory
    BLOCK_TYPES.add(name)


def _block(in_chs: int, out_chs: int, stride: int, drop_path_rate: float = 0.0, *, row, cfg: NetConfig,
           ) -> nn.Module:
    """One table row's block at its position: the builder supplies widths, stride and drop rate."""
    block, kernel, expansion, _, _, _, se_ratio, act_name = row
    act = ACT_LAYERS[act_name or cfg.act]
    mid = make_divisible(in_chs * expansion)
    se_layer = None
    if se_ratio:
        base = mid if cfg.se_from_mid else in_chs
        rd = make_divisible(base * se_ratio, cfg.se_divisor) if cfg.se_divisor > 1 else max(1, int(base * se_ratio))
        se_layer = partial(squeeze_excite, rd_channels=rd, act_layer=ACT_LAYERS[cfg.se_act] if cfg.se_act else act,
                           gate_layer=ACT_LAYERS[cfg.se_gate])
    return BLOCKS[block](kernel, in_chs, mid, out_chs, act, stride=stride, se_layer=se_layer, eps=cfg.eps,
                         momentum=cfg.momentum, padding=cfg.padding, drop_path_rate=drop_path_rate)


def irnet(config: str | NetConfig, *, width_mult: float = 1.0, depth_mult: float | tuple[float, ...] = 1.0,
          num_classes: int = 1000, in_chans: int = 3, **options: Any) -> BackboneClassifier:
    """Build an inverted-residual network from a config table.

    Args:
        config: a name from :data:`mhub_mobilenet.configs.CONFIGS` or a :class:`NetConfig`.
        width_mult: channel multiplier (widths rounded to multiples of 8).
        depth_mult: repeat multiplier (``ceil``), or one multiplier per row.
        num_classes: classifier outputs; 0 leaves the final linear layer out.
        in_chans: input channels.
        **options: config fields to override (``drop_path_rate``, ``dropout``, ``padding``, ``eps``, ``act``...).

    Returns:
        A :class:`mhub.BackboneClassifier`.

    Raises:
        ValueError: an unknown config or option (the message lists the valid ones).
    """
    cfg = get_config(config, **options) if isinstance(config, str) else replace(config, **options)
    act = ACT_LAYERS[cfg.act]
    conv_kw = dict(eps=cfg.eps, momentum=cfg.momentum, padding=cfg.padding)
    rows = cfg.rows
    depths = depth_mult if isinstance(depth_mult, (tuple, list)) else (depth_mult,) * len(rows)
    if len(depths) != len(rows):
        raise ConfigError(f"depth_mult has {len(depths)} entries for {len(rows)} rows")
    fixed = {0, len(rows) - 1} if cfg.fix_first_last else set()
    repeats = [row[4] if i in fixed else math.ceil(row[4] * d) for i, (row, d) in enumerate(zip(rows, depths))]

    def width(channels: int) -> int:
        return make_divisible(channels * width_mult, 8, round_limit=cfg.round_limit)

    stem_chs = cfg.stem if cfg.fix_stem else width(cfg.stem)
    widths = [row[3] if i == 0 and cfg.fix_first_row else width(row[3]) for i, row in enumerate(rows)]
    builder = BlockBuilder(
        _block, repeats, in_chs=stem_chs, width_fn=stage_widths(widths),
        stride_fn=stage_strides([row[5] for row in rows]), drop_path_rate=cfg.drop_path_rate,
        schedule=_torchvision_schedule, block_kwargs=lambda stage, _: {"row": rows[stage], "cfg": cfg})
    parts = OrderedDict(stem=conv_norm(3, in_chans, stem_chs, act, stride=2, **conv_kw),
                        blocks=nn.Sequential(*(builder(s, b) for s, b in builder.positions())))
    features = widths[-1]
    # feature-point candidates in forward order: (module, channels, total stride after it)
    reduction = 2
    candidates = [("backbone.stem", stem_chs, reduction)]
    for index, (stage, block) in enumerate(builder.positions()):
        reduction *= builder.stride_fn(stage, block)
        candidates.append((f"backbone.blocks.{index}", builder.out_chs(stage, block), reduction))
    if cfg.head:
        head = {"fixed": cfg.head, "width": width(cfg.head), "width_min": max(cfg.head, width(cfg.head))}
        parts["head"] = conv_norm(1, features, head[cfg.head_rule], act, **conv_kw)
        features = head[cfg.head_rule]
        if cfg.head_feature:
            candidates.append(("backbone.head", features, reduction))
    classifier = create_classifier(features, num_classes, dropout=cfg.dropout, hidden=cfg.hidden or None,
                                   act_layer=act)
    model = BackboneClassifier(nn.Sequential(parts), classifier, feature_info=_last_at_each_stride(candidates))
    he_init(model)
    return model


def _last_at_each_stride(candidates: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """timm's ``features_only`` levels: the last module before each change of resolution, and the last one."""
    points = {}
    for module, channels, reduction in candidates:
        points[reduction] = {"module": module, "num_chs": channels, "reduction": reduction}
    return list(points.values())


# -- high level ---------------------------------------------------------------------------------------------
def _by_width(family: str, config: str, names: dict[float, str], width_mult: float, pretrained: bool,
              in_chans: int, num_classes: int | None, **kwargs: Any) -> nn.Module:
    if width_mult in names:
        return mhub.create(names[width_mult], pretrained, num_classes, in_chans, **kwargs)
    if pretrained:
        raise ConfigError(f"{family}: pretrained weights exist only for width_mult in {sorted(names)}")
    return irnet(config, width_mult=width_mult, num_classes=num_classes or 1000, in_chans=in_chans, **kwargs)


def MobileNetv1(width_mult: float, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                **kwargs: Any) -> nn.Module:
    """MobileNetV1 (no hidden dense layer in the head) at ``width_mult`` (1.0 is ``mobilenet_v1``)."""
    return _by_width("MobileNetv1", "mobilenet_v1", {1.0: "mobilenet_v1"}, width_mult, pretrained, in_chans,
                     num_classes, **kwargs)


def MobileNetv2(width_mult: float, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                **kwargs: Any) -> nn.Module:
    """MobileNetV2 at ``width_mult`` (1.0 is torchvision's ``mobilenet_v2``)."""
    return _by_width("MobileNetv2", "mobilenet_v2", {1.0: "mobilenet_v2"}, width_mult, pretrained, in_chans,
                     num_classes, **kwargs)


def MobileNetv3(config: str, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                **kwargs: Any) -> nn.Module:
    """MobileNetV3 ``"large"`` or ``"small"`` (torchvision's ``mobilenet_v3_large`` / ``_small``)."""
    name = config_name("MobileNetv3", config, {"large": "mobilenet_v3_large", "small": "mobilenet_v3_small"},
                       what="a config")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def MNASNet(width_mult: float, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
            **kwargs: Any) -> nn.Module:
    """MNASNet-B1 at ``width_mult`` (0.5, 0.75, 1.0, 1.3 are torchvision's ``mnasnet*``; others are built)."""
    names = {0.5: "mnasnet0_5", 0.75: "mnasnet0_75", 1.0: "mnasnet1_0", 1.3: "mnasnet1_3"}
    return _by_width("MNASNet", "mnasnet_b1", names, width_mult, pretrained, in_chans, num_classes, **kwargs)


def EfficientNet(config: str, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                 **kwargs: Any) -> nn.Module:
    """EfficientNet ``"b0"`` ... ``"b7"`` (torchvision's ``efficientnet_b*``; stochastic depth 0.2)."""
    name = config_name("EfficientNet", config, {f"b{i}": f"efficientnet_b{i}" for i in range(8)}, what="a config")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def EfficientNetv2(config: str, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                   **kwargs: Any) -> nn.Module:
    """EfficientNetV2 ``"s"``, ``"m"``, ``"l"`` (torchvision) or ``"xl"`` (timm's TensorFlow port)."""
    names = {"s": "efficientnet_v2_s", "m": "efficientnet_v2_m", "l": "efficientnet_v2_l", "xl": "tf_efficientnetv2_xl"}
    name = config_name("EfficientNetv2", config, names, what="a config")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def EfficientNetLite(config: str, *, tf_padding: bool = False, pretrained: bool = False, in_chans: int = 3,
                     num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """EfficientNet-Lite ``"lite0"`` ... ``"lite4"``: no squeeze-excite, ReLU6, stem and head not scaled.

    Args:
        tf_padding: the TensorFlow port (``tf_efficientnet_lite*``: ``SAME`` padding, BatchNorm eps 1e-3),
            which TensorFlow-trained checkpoints need.
    """
    name = config_name("EfficientNetLite", config, {f"lite{i}": f"efficientnet_lite{i}" for i in range(5)},
                       what="a config")
    return mhub.create(("tf_" if tf_padding else "") + name, pretrained, num_classes, in_chans, **kwargs)

