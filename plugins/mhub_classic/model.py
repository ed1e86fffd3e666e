"""The classic CNNs: AlexNet, VGG, SqueezeNet, DenseNet and GoogLeNet (torchvision's names and weights).

Three levels, as in Metalhead 0.8:

- high: :func:`AlexNet`, :func:`VGG`, :func:`SqueezeNet`, :func:`DenseNet`, :func:`GoogLeNet`, each with
  ``pretrained``, ``in_chans`` and ``num_classes``; ``VGG()``, ``SqueezeNet()`` and ``DenseNet()`` have no
  default configuration;
- mid: :func:`~mhub_classic.alexnet.alexnet`, :func:`~mhub_classic.vgg.vgg` (from a config table),
  :func:`~mhub_classic.squeezenet.squeezenet`, :func:`~mhub_classic.densenet.densenet` (growth rate, block
  configuration, stem width; dropout, memory-efficient checkpointing) and
  :func:`~mhub_classic.googlenet.googlenet` (auxiliary classifiers, ``transform_input``);
- registry builders: one function per registered name (``vgg16_bn(...)``), from
  :data:`mhub_classic.configs.ARCHS` by :func:`mhub.families.registry_builder`.

Every conv + BatchNorm pair is a :func:`mhub.layers.conv_norm` unit (pre-activation, ``revnorm=True``, in
DenseNet), so BatchNorm fusion and feature extraction find them without knowing these architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

import mhub
from mhub._model import BackboneClassifier
from mhub.families import config_name, registry_builder

from . import configs
from .alexnet import alexnet
from .densenet import densenet
from .googlenet import googlenet
from .squeezenet import squeezenet
from .vgg import vgg

MID_LEVEL: dict[str, Callable[..., BackboneClassifier]] = {
    "alexnet": alexnet, "vgg": vgg, "squeezenet": squeezenet, "densenet": densenet, "googlenet": googlenet,
}


# One module-level builder per registered name, so "mhub_classic.model:<name>" resolves lazily.
for _name, (_function, _arguments, *_) in configs.ARCHS.items():
    globals()[_name] = registry_builder(_name, MID_LEVEL[_function], _arguments)
del _name, _function, _arguments


# -- high level --------------------------------------------------------------------------------------------
def AlexNet(*, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
            **kwargs: Any) -> nn.Module:
    """AlexNet (torchvision's ``alexnet``); ``kwargs`` as :func:`~mhub_classic.alexnet.alexnet`."""
    return mhub.create("alexnet", pretrained, num_classes, in_chans, **kwargs)


def VGG(depth: int | None = None, *, batchnorm: bool = False, pretrained: bool = False, in_chans: int = 3,
        num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """VGG-``depth``, e.g. ``VGG(16, batchnorm=True)`` (torchvision's ``vgg16_bn``).

    Args:
        depth: 11, 13, 16 or 19 (required).
        batchnorm: BatchNorm after every convolution.
        pretrained: load the registry's default weights of that architecture.
        in_chans: input channels.
        num_classes: classifier outputs (default 1000, or the weights' classes when pretrained).
        **kwargs: options of :func:`~mhub_classic.vgg.vgg` (``hidden``, ``dropout``, ...).

    Raises:
        ConfigError: no depth, or one without a configuration.
    """
    name = config_name("VGG", depth, {d: f"vgg{d}" for d in configs.VGG_CONFIGS}, what="a depth")
    return mhub.create(name + ("_bn" if batchnorm else ""), pretrained, num_classes, in_chans, **kwargs)


def SqueezeNet(version: str | None = None, *, pretrained: bool = False, in_chans: int = 3,
               num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """SqueezeNet ``"1_0"`` or ``"1_1"``, e.g. ``SqueezeNet("1_1")`` (torchvision's ``squeezenet1_1``).

    Raises:
        ConfigError: no version, or an unknown one.
    """
    name = config_name("SqueezeNet", version, {v: f"squeezenet{v}" for v in configs.SQUEEZENET_CONFIGS},
                       what="a version")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def DenseNet(depth: int | None = None, *, pretrained: bool = False, in_chans: int = 3,
             num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """DenseNet-``depth`` (121, 161, 169 or 201; required), e.g. ``DenseNet(121)``.

    ``kwargs`` are options of :func:`~mhub_classic.densenet.densenet` (``drop_rate``, ``memory_efficient``...).

    Raises:
        ConfigError: no depth, or one without a configuration.
    """
    name = config_name("DenseNet", depth, {d: f"densenet{d}" for d in configs.DENSENET_CONFIGS}, what="a depth")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def GoogLeNet(*, aux_logits: bool = False, pretrained: bool = False, in_chans: int = 3,
              num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """GoogLeNet (torchvision's ``googlenet``).

    Args:
        aux_logits: add the two auxiliary classifiers (training only). With ``pretrained`` they are freshly
            initialised, with a warning (torchvision's weights hold no trained ones).
        pretrained: load the registry's default weights (which set ``transform_input``).
        in_chans: input channels.
        num_classes: classifier outputs (default 1000, or the weights' classes when pretrained).
        **kwargs: options of :func:`~mhub_classic.googlenet.googlenet` (``dropout``, ``aux_dropout``...).
    """
    return mhub.create("googlenet", pretrained, num_classes, in_chans, aux_logits=aux_logits, **kwargs)
