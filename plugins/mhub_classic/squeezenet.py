"""SqueezeNet 1.0 and 1.1, as torchvision 0.29's ``squeezenet.py`` builds them.

Paper: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size"
(2016, arXiv:1602.07360); version 1.1 (from the authors' repository) starts with a 3x3 convolution and pools
earlier, for 2.4x less computation. torchvision's checkpoints load through ``torchvision.classic``.

Layout: ``backbone.conv1`` (a :func:`~mhub.layers.conv_norm` without a norm), then fire modules
``backbone.fire<n>`` (``squeeze``, ``expand1x1``, ``expand3x3``) and max pools ``backbone.pool<n>``, numbered
after the paper's layers; the classifier is ``dropout``, ``fc`` (a 1x1 convolution to the classes), ``act``,
``pool``, ``flatten``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mhub._model import BackboneClassifier
from mhub.layers import conv_norm

from .configs import SQUEEZENET_CONFIGS, ConfigError


class Fire(nn.Module):
    """A 1x1 squeeze, then 1x1 and 3x3 expansions side by side, concatenated (all ReLU-activated)."""

    def __init__(self, in_chs: int, squeeze_chs: int, expand_chs: int):
        super().__init__()
        self.squeeze = conv_norm(1, in_chs, squeeze_chs, norm_layer=None)
        self.expand1x1 = conv_norm(1, squeeze_chs, expand_chs, norm_layer=None)
        self.expand3x3 = conv_norm(3, squeeze_chs, expand_chs, norm_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand3x3(x)], 1)


def squeezenet(version: str, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
               ) -> BackboneClassifier:
    """Build SqueezeNet.

    Args:
        version: ``"1_0"`` or ``"1_1"`` (:data:`mhub_classic.configs.SQUEEZENET_CONFIGS`).
        num_classes: outputs of the final 1x1 convolution (0: the pooled 512 features come out).
        in_chans: input channels.
        dropout: dropout before the final convolution.

    Returns:
        A :class:`mhub.BackboneClassifier`; the backbone has output stride 16 (13 x 13 at 224 px).

    Raises:
        ConfigError: an unknown version (the valid ones are listed).
    """
    if version not in SQUEEZENET_CONFIGS:
        raise ConfigError(f"SqueezeNet has no version {version!r}; valid: {', '.join(SQUEEZENET_CONFIGS)}")
    config = SQUEEZENET_CONFIGS[version]
    chs, kernel = config["stem"]
    layers: list[tuple[str, nn.Module]] = [("conv1", conv_norm(kernel, in_chans, chs, stride=2, padding=0,
                                                                norm_layer=None))]
    # feature levels: the last module before each pool, and the last fire module (timm has no SqueezeNet)
    feature_info = [{"module": "backbone.conv1", "num_chs": chs, "reduction": 2}]
    number = 1  # the paper's layer number of the last module
    for entry in config["layers"]:
        if entry == "M":
            layers.append((f"pool{number}", nn.MaxPool2d(3, 2, ceil_mode=True)))
            feature_info.append({"reduction": 2 * feature_info[-1]["reduction"]})
            continue
        number += 1
        squeeze_chs, expand_chs = entry
        layers.append((f"fire{number}", Fire(chs, squeeze_chs, expand_chs)))
        chs = 2 * expand_chs
        feature_info[-1].update(module=f"backbone.fire{number}", num_chs=chs)
    head: list[tuple[str, nn.Module]] = []
    if num_classes:
        head = [("dropout", nn.Dropout(dropout)), ("fc", nn.Conv2d(chs, num_classes, 1)), ("act", nn.ReLU())]
    head += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten(1))]
    model = BackboneClassifier(nn.Sequential(OrderedDict(layers)), nn.Sequential(OrderedDict(head)),
                               feature_info=feature_info)
    _init_weights(model)
    return model


def _init_weights(model: BackboneClassifier) -> None:
    # torchvision's scheme: He-uniform convolutions, a small normal final convolution, zero biases
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    final = getattr(model.classifier, "fc", None)
    if final is not None:
        nn.init.normal_(final.weight, 0.0, 0.01)
