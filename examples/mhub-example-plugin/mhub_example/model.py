"""TinyNet, the example family: a small VGG-style network built only from mhub's public layers and builders.

It computes what the upstream implementation in :mod:`mhub_example.upstream` computes, so upstream
checkpoints load after the key map of :mod:`mhub_example.convert`.

State-dict layout (what ``first_conv`` and ``classifier`` in ``plugin.py`` name)::

    backbone.stem.conv / .norm                     conv_norm: children conv, norm, act
    backbone.stages.<stage>.<block>.conv1.conv     build_stages: <stage>.<block>
    backbone.stages.<stage>.<block>.conv2.norm
    classifier.fc                                  create_classifier: pool, flatten, fc

Feature levels (``feature_info``): ``backbone.stages.<stage>``, the stage outputs at strides 2, 4, ...

Two of Metalhead's three levels: :func:`tinynet` (every option; the registered builder) and :func:`TinyNet`
(a registered size, ``pretrained`` through the hub).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

import mhub
from mhub import BackboneClassifier
from mhub.builders import BlockBuilder, build_stages, stage_strides, stage_widths
from mhub.families import config_name
from mhub.layers import conv_norm, create_classifier


def double_conv(*, in_chs: int, out_chs: int, stride: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU units; the first one strides."""
    return nn.Sequential(OrderedDict(
        conv1=conv_norm(3, in_chs, out_chs, stride=stride),
        conv2=conv_norm(3, out_chs, out_chs),
    ))


def tinynet(*, widths: Sequence[int], depths: Sequence[int], stem_chs: int = 8, dropout: float | None = None,
            num_classes: int = 1000, in_chans: int = 3) -> BackboneClassifier:
    """A stride-2 stem, then one stage per width (each but the first halving the resolution), then a head.

    Args:
        widths: output channels of each stage.
        depths: blocks in each stage.
        stem_chs: channels of the stem convolution.
        dropout: dropout before the classifier (``None``: no dropout module).
        num_classes: classifier outputs (``0``: pooled features).
        in_chans: input channels.
    """
    builder = BlockBuilder(double_conv, depths, in_chs=stem_chs, width_fn=stage_widths(widths),
                           stride_fn=stage_strides([1] + [2] * (len(widths) - 1)))
    backbone = nn.Sequential(OrderedDict(
        stem=conv_norm(3, in_chans, stem_chs, stride=2),
        stages=build_stages(builder),
    ))
    # Feature points for mhub.features / create(features_only=True) / UNet: the last module at each stride
    # (timm's rule), listed in forward order. The first stage keeps the stem's stride 2; each later one halves.
    feature_info = [{"module": f"backbone.stages.{index}", "num_chs": width, "reduction": 2 ** (index + 1)}
                    for index, width in enumerate(widths)]
    return BackboneClassifier(backbone, create_classifier(widths[-1], num_classes, dropout=dropout),
                              feature_info=feature_info)


def TinyNet(size: str | None = None, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
            **kwargs) -> nn.Module:
    """A registered TinyNet by size, e.g. ``TinyNet("tiny", pretrained=True)``; there is no default size.

    Args:
        size: ``"tiny"`` (``tinynet``).
        pretrained: load the registry's default weights of that architecture.
        in_chans: input channels (pretrained weights are adapted).
        num_classes: classifier outputs (default: the weights' classes).
        **kwargs: options of :func:`tinynet`.

    Raises:
        mhub.ConfigError: no size, or an unknown one (the message lists the valid ones).
    """
    name = config_name("TinyNet", size, {"tiny": "tinynet"}, what="a size")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)
