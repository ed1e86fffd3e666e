"""VGG 11/13/16/19, with or without BatchNorm, as torchvision 0.29's ``vgg.py`` builds them.

Paper: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (ICLR 2015,
arXiv:1409.1556); configurations A, B, D and E. torchvision's checkpoints load through ``torchvision.classic``,
timm's ``vgg*`` (whose first two dense layers are convolutions) through ``timm.classic``.

Layout: ``backbone.stages.<s>.<i>`` are :func:`~mhub.layers.conv_norm` units (``conv``, ``norm`` when
``batchnorm``, ``act``) and ``backbone.stages.<s>.pool`` the 2x2 max pool ending each stage; the classifier
is :func:`mhub_classic.heads.mlp_classifier` over a 7x7 grid (``fc1``, ``act1``, ``drop1``, ``fc2``, ``act2``,
``drop2``, ``fc``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import nn

from mhub._model import BackboneClassifier
from mhub.builders import BlockBuilder, build_stages, stage_widths
from mhub.layers import conv_norm, he_init

from .configs import VGG_CONFIGS, ConfigError
from .heads import mlp_classifier

LayerFactory = Callable[..., nn.Module]


def _never_strided(stage_idx: int, block_idx: int) -> int:
    return 1  # VGG halves the resolution with the max pool ending each stage


def _conv_unit(in_chs: int, out_chs: int, stride: int, *, act_layer: LayerFactory,
               norm_layer: LayerFactory | None) -> nn.Sequential:
    # torchvision's VGG keeps the convolution bias even when BatchNorm follows
    return conv_norm(3, in_chs, out_chs, act_layer, norm_layer=norm_layer, stride=stride, bias=True)


def vgg(config: int | Sequence[tuple[int, int]], *, batchnorm: bool = False, num_classes: int = 1000,
        in_chans: int = 3, hidden: Sequence[int] = (4096, 4096), dropout: float = 0.5, pool_size: int = 7,
        act_layer: LayerFactory = nn.ReLU, norm_layer: LayerFactory = nn.BatchNorm2d) -> BackboneClassifier:
    """Build a VGG network.

    Args:
        config: a depth of :data:`mhub_classic.configs.VGG_CONFIGS` (11, 13, 16, 19) or a table of
            ``(output channels, 3x3 convolutions)`` per stage.
        batchnorm: BatchNorm after every convolution (``vgg*_bn``).
        num_classes: classifier outputs (0: no final linear layer).
        in_chans: input channels.
        hidden: widths of the classifier's hidden layers (4096, 4096 in the paper; empty for none).
        dropout: dropout after each hidden layer.
        pool_size: grid the feature map is average-pooled to before the classifier.
        act_layer: activation after every convolution and hidden layer.
        norm_layer: normalisation used when ``batchnorm`` is set.

    Returns:
        A :class:`mhub.BackboneClassifier`; the backbone has output stride 32.

    Raises:
        ConfigError: an unknown depth (the valid ones are listed).
    """
    if isinstance(config, int):
        if config not in VGG_CONFIGS:
            raise ConfigError(f"VGG has no depth {config}; valid: {', '.join(map(str, VGG_CONFIGS))}")
        config = VGG_CONFIGS[config]
    widths = [channels for channels, _ in config]
    builder = BlockBuilder(_conv_unit, [repeats for _, repeats in config], in_chs=in_chans,
                           width_fn=stage_widths(widths), stride_fn=_never_strided,
                           block_kwargs=dict(act_layer=act_layer, norm_layer=norm_layer if batchnorm else None))
    stages = build_stages(builder)
    for stage in stages:
        stage.add_module("pool", nn.MaxPool2d(2, 2))
    classifier = mlp_classifier(widths[-1], num_classes, pool_size=pool_size, hidden=hidden, dropout=dropout)
    # timm's levels: each stage's last convolution unit (stride 1 to 16), then the final pool (stride 32)
    feature_info = [{"module": f"backbone.stages.{s}.{repeats - 1}", "num_chs": chs, "reduction": 2 ** s}
                    for s, (chs, repeats) in enumerate(config)]
    feature_info.append({"module": f"backbone.stages.{len(config) - 1}.pool", "num_chs": widths[-1],
                         "reduction": 2 ** len(config)})
    model = BackboneClassifier(nn.Sequential(OrderedDict(stages=stages)), classifier, feature_info=feature_info)
    he_init(model)
    return model
