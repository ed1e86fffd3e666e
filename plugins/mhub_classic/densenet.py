"""DenseNet-BC 121/161/169/201, as torchvision 0.29's ``densenet.py`` and timm's ``densenet.py`` build them.

Paper: Huang et al., "Densely Connected Convolutional Networks" (CVPR 2017, arXiv:1608.06993), the BC variant
(4k-wide 1x1 bottlenecks, transitions halving the channels); memory-efficient checkpointing after Pleiss et al.,
"Memory-Efficient Implementation of DenseNets" (2017, arXiv:1707.06990). torchvision's checkpoints (old
``norm.1`` key spelling included) and timm's, whose layout is the same, load through ``torchvision.classic`` /
``timm.classic``.

Every dense layer and transition is pre-activation: norm, ReLU, then convolution, i.e.
:func:`~mhub.layers.conv_norm` with ``revnorm=True``. Layout: ``backbone.stem`` (7x7/2 conv, norm, act) and
``backbone.pool``; ``backbone.stages.<s>``: for ``s > 0`` a ``transition`` unit (1x1 conv) and its 2x2
average ``pool``, then ``layers.<j>`` (units ``conv1``: 1x1 bottleneck, ``conv2``: 3x3 to ``growth_rate``
channels); ``backbone.norm``, ``backbone.act``; ``classifier`` (pool, flatten, ``fc``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mhub._model import BackboneClassifier
from mhub.layers import conv_norm, create_classifier, he_init

LayerFactory = Callable[..., nn.Module]


class DenseLayer(nn.Module):
    """Concatenate every earlier feature map, then a 1x1 bottleneck and a 3x3 convolution to ``growth_rate``.

    Args:
        in_chs: channels of all earlier feature maps together.
        growth_rate: channels this layer adds.
        bn_size: bottleneck width as a multiple of ``growth_rate``.
        drop_rate: dropout on the new channels (training only).
        memory_efficient: recompute the concatenation and bottleneck in the backward pass instead of storing
            them (``torch.utils.checkpoint``): quadratic memory becomes linear in depth, for ~15-20% more time.
        act_layer, norm_layer: activation and normalisation.
    """

    def __init__(self, in_chs: int, growth_rate: int, *, bn_size: int = 4, drop_rate: float = 0.0,
                 memory_efficient: bool = False, act_layer: LayerFactory = nn.ReLU,
                 norm_layer: LayerFactory = nn.BatchNorm2d):
        super().__init__()
        unit = dict(act_layer=act_layer, norm_layer=norm_layer, revnorm=True, bias=False)
        self.conv1 = conv_norm(1, in_chs, bn_size * growth_rate, **unit)
        self.conv2 = conv_norm(3, bn_size * growth_rate, growth_rate, **unit)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def bottleneck(self, *features: torch.Tensor) -> torch.Tensor:
        return self.conv1(torch.cat(features, 1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and self.training and any(f.requires_grad for f in features):
            out = checkpoint(self.bottleneck, *features, use_reentrant=False)
        else:
            out = self.bottleneck(*features)
        out = self.conv2(out)
        return F.dropout(out, self.drop_rate, self.training) if self.drop_rate > 0 else out

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, memory_efficient={self.memory_efficient}"


class DenseBlock(nn.ModuleList):
    """Dense layers, each fed every earlier output; returns the input and all new channels concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self:
            features.append(layer(features))
        return torch.cat(features, 1)


def dense_layer_builder(growth_rate: int, stage_in_chs: Sequence[int], **layer_kwargs) -> Callable[[int, int],
                                                                                                    DenseLayer]:
    """The builder of dense layers: ``(stage_idx, layer_idx) -> DenseLayer``.

    Layer ``j`` of stage ``s`` sees ``stage_in_chs[s] + j * growth_rate`` channels; ``layer_kwargs`` go to
    every :class:`DenseLayer`.
    """
    def build(stage_idx: int, layer_idx: int) -> DenseLayer:
        return DenseLayer(stage_in_chs[stage_idx] + layer_idx * growth_rate, growth_rate, **layer_kwargs)

    return build


def densenet(growth_rate: int, block_config: Sequence[int], num_init_features: int, *, num_classes: int = 1000,
             in_chans: int = 3, bn_size: int = 4, compression: float = 0.5, drop_rate: float = 0.0,
             memory_efficient: bool = False, act_layer: LayerFactory = nn.ReLU,
             norm_layer: LayerFactory = nn.BatchNorm2d, pool: str = "avg",
             dropout: float | None = None) -> BackboneClassifier:
    """Build a DenseNet-BC.

    Args:
        growth_rate: channels each dense layer adds (k).
        block_config: dense layers in each of the stages.
        num_init_features: channels of the stem convolution.
        num_classes: classifier outputs (0: no final linear layer).
        in_chans: input channels.
        bn_size: bottleneck width as a multiple of ``growth_rate`` (4 in DenseNet-B).
        compression: fraction of the channels each transition keeps (0.5 in DenseNet-C; rounded down).
        drop_rate: dropout on each dense layer's new channels (training only).
        memory_efficient: checkpoint each layer's concatenation and bottleneck (see :class:`DenseLayer`).
        act_layer, norm_layer: activation and normalisation.
        pool: classifier global pooling (see :func:`mhub.layers.create_pool`).
        dropout: classifier dropout (``None``: no dropout module).

    Returns:
        A :class:`mhub.BackboneClassifier`; the backbone has output stride 32.
    """
    # each stage's input and output widths; a transition compresses the previous stage's output
    stage_in_chs, stage_out_chs, chs = [], [], num_init_features
    for stage_idx, layers in enumerate(block_config):
        if stage_idx > 0:
            chs = math.floor(chs * compression)
        stage_in_chs.append(chs)
        chs += layers * growth_rate
        stage_out_chs.append(chs)
    build = dense_layer_builder(growth_rate, stage_in_chs, bn_size=bn_size, drop_rate=drop_rate,
                                memory_efficient=memory_efficient, act_layer=act_layer, norm_layer=norm_layer)
    stages = nn.Sequential()
    for stage_idx, layers in enumerate(block_config):
        parts: list[tuple[str, nn.Module]] = []
        if stage_idx > 0:
            parts += [("transition", conv_norm(1, stage_out_chs[stage_idx - 1], stage_in_chs[stage_idx], act_layer,
                                               norm_layer=norm_layer, revnorm=True, bias=False)),
                      ("pool", nn.AvgPool2d(2, 2))]
        parts.append(("layers", DenseBlock(build(stage_idx, j) for j in range(layers))))
        stages.append(nn.Sequential(OrderedDict(parts)))
    backbone = nn.Sequential(OrderedDict(
        stem=conv_norm(7, in_chans, num_init_features, act_layer, norm_layer=norm_layer, stride=2),
        pool=nn.MaxPool2d(3, 2, padding=1),
        stages=stages,
        norm=norm_layer(chs),
        act=act_layer(),
    ))
    # timm's levels: the stem, each dense block's output but the last, the final norm + activation
    feature_info = [{"module": "backbone.stem", "num_chs": num_init_features, "reduction": 2}]
    feature_info += [{"module": f"backbone.stages.{s}", "num_chs": out_chs, "reduction": 4 * 2 ** s}
                     for s, out_chs in enumerate(stage_out_chs[:-1])]
    feature_info.append({"module": "backbone.act", "num_chs": chs, "reduction": 2 ** (len(block_config) + 1)})
    model = BackboneClassifier(backbone, create_classifier(chs, num_classes, pool=pool, dropout=dropout),
                               feature_info=feature_info)
    he_init(model, mode="fan_in", linear_std=None)
    return model
