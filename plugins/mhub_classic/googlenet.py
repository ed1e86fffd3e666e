"""GoogLeNet (Inception v1), as torchvision 0.29's ``googlenet.py`` builds it.

Paper: Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015, arXiv:1409.4842), with BatchNorm after
every convolution (epsilon 1e-3) as in torchvision's port, whose checkpoint loads through
``torchvision.classic``. Two details of that port are kept because its weights were trained with them: the
"5x5" branch uses a 3x3 convolution, and the pool before inception5a is 2x2 (see
:data:`mhub_classic.configs.GOOGLENET_LAYERS`).

- ``transform_input``: torchvision's weights expect inputs normalised to [-1, 1] (``(x - 0.5) / 0.5``); with it,
  the backbone first turns ImageNet-normalised inputs into that (:meth:`mhub.layers.Renormalize.transform_input`,
  as in Inception v3; a grey input is read as R, G and B, and ``conv1`` keeps 3 input channels). It is a property
  of those weights: their manifest entry sets it (``[weights.model_args]``), so
  ``mhub.create("googlenet", pretrained=True)`` takes the usual ImageNet preprocessing.
- ``aux_logits``: the two auxiliary classifiers of the paper, off by default. When on, the model in training
  mode returns ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`` like torchvision's; in eval mode, logits.

Layout: ``backbone`` = [``transform``], ``conv1``, ``pool1``, ``conv2``, ``conv3``, ``pool2``, then the
Inception modules and pools of the table, each module a :class:`mhub.layers.ConcatBranches` of ``branch1x1`` (a
:func:`~mhub.layers.conv_norm` unit), ``branch3x3`` and ``branch5x5`` (``reduce``, ``conv``) and
``branch_pool`` (``pool``, ``proj``); ``classifier`` (pool, flatten, dropout, ``fc``); with ``aux_logits``,
``aux1`` and ``aux2`` (``pool``, ``conv``, ``flatten``, ``fc1``, ``act``, ``dropout``, ``fc``).
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from functools import partial

import torch
from torch import nn

from mhub._model import BackboneClassifier
from mhub.layers import ConcatBranches, Renormalize, conv_norm, create_classifier

from .configs import GOOGLENET_AUX_TAPS, GOOGLENET_LAYERS, ConfigError

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
_MODULES = {name: widths for name, *widths in GOOGLENET_LAYERS if len(widths) > 1}  # name -> module widths

_unit = partial(conv_norm, eps=1e-3)  # conv (no bias), BatchNorm with epsilon 1e-3, ReLU


def inception_module(in_chs: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                     pool_proj: int) -> ConcatBranches:
    """Four parallel branches concatenated: 1x1; 1x1 then 3x3; 1x1 then "5x5" (3x3); 3x3 max pool then 1x1."""
    return ConcatBranches(OrderedDict(
        branch1x1=_unit(1, in_chs, ch1x1),
        branch3x3=nn.Sequential(OrderedDict(reduce=_unit(1, in_chs, ch3x3red), conv=_unit(3, ch3x3red, ch3x3))),
        branch5x5=nn.Sequential(OrderedDict(reduce=_unit(1, in_chs, ch5x5red), conv=_unit(3, ch5x5red, ch5x5))),
        branch_pool=nn.Sequential(OrderedDict(pool=nn.MaxPool2d(3, 1, padding=1, ceil_mode=True),
                                              proj=_unit(1, in_chs, pool_proj))),
    ))


def _out_chs(module: str) -> int:
    """Channels the Inception module ``module`` of the table outputs: the sum of its branches' widths."""
    ch1x1, _, ch3x3, _, ch5x5, pool_proj = _MODULES[module]
    return ch1x1 + ch3x3 + ch5x5 + pool_proj


def aux_classifier(in_chs: int, num_classes: int, *, dropout: float = 0.7) -> nn.Sequential:
    """An auxiliary classifier: 4x4 average pool, 1x1 conv to 128, dense 1024 with ReLU, dropout, dense."""
    return nn.Sequential(OrderedDict(
        pool=nn.AdaptiveAvgPool2d(4), conv=_unit(1, in_chs, 128), flatten=nn.Flatten(1),
        fc1=nn.Linear(128 * 4 * 4, 1024), act=nn.ReLU(), dropout=nn.Dropout(dropout),
        fc=nn.Linear(1024, num_classes)))


class GoogLeNet(BackboneClassifier):
    """:class:`mhub.BackboneClassifier` with optional auxiliary classifiers ``aux1``, ``aux2`` (training only).

    The auxiliary heads are children of the model next to ``backbone`` and ``classifier``; :meth:`forward`
    runs them on the outputs of the backbone modules named in
    :data:`mhub_classic.configs.GOOGLENET_AUX_TAPS`.
    """

    @property
    def aux_logits(self) -> bool:
        """Whether the auxiliary classifiers are there."""
        return all(head in self._modules for head in GOOGLENET_AUX_TAPS.values())

    def add_aux_classifiers(self, num_classes: int, *, dropout: float = 0.7) -> GoogLeNet:
        """Attach freshly initialised auxiliary classifiers (e.g. to a pretrained model) and return the model.

        Raises:
            ConfigError: ``num_classes`` is 0, or the heads are already there.
        """
        if self.aux_logits:
            raise ConfigError("this GoogLeNet has auxiliary classifiers already")
        if num_classes < 1:
            raise ConfigError(f"auxiliary classifiers need num_classes >= 1, got {num_classes}")
        for tap, head in GOOGLENET_AUX_TAPS.items():
            aux = aux_classifier(_out_chs(tap), num_classes, dropout=dropout)
            _init_weights(aux)
            self.add_module(head, aux.to(next(self.parameters()).device))
        return self

    def forward(self, x: torch.Tensor):
        if not (self.training and self.aux_logits):
            return self.classifier(self.backbone(x))
        aux = {}
        for name, module in self.backbone.named_children():
            x = module(x)
            if name in GOOGLENET_AUX_TAPS:
                aux[GOOGLENET_AUX_TAPS[name]] = self.get_submodule(GOOGLENET_AUX_TAPS[name])(x)
        return GoogLeNetOutputs(self.classifier(x), aux["aux2"], aux["aux1"])


def googlenet(*, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, transform_input: bool = False,
              dropout: float = 0.2, aux_dropout: float = 0.7) -> GoogLeNet:
    """Build GoogLeNet.

    Args:
        num_classes: classifier outputs (0: no final linear layer; ``aux_logits`` then raises ConfigError, as
            the auxiliary classifiers need classes).
        in_chans: input channels.
        aux_logits: add the auxiliary classifiers (training only). torchvision's weights hold none worth
            loading: ``mhub.create("googlenet", pretrained=True, aux_logits=True)`` initialises them fresh.
        transform_input: re-normalise ImageNet-normalised inputs to [-1, 1] first
            (:meth:`mhub.layers.Renormalize.transform_input`); the weight sets that need it set it. With
            ``in_chans=1`` the grey channel is read as R, G and B and ``conv1`` keeps 3 input channels.
        dropout: dropout before the final linear layer.
        aux_dropout: dropout inside the auxiliary classifiers.

    Returns:
        A :class:`GoogLeNet`; the backbone has output stride 32.

    Raises:
        ConfigError: ``transform_input`` with ``in_chans`` other than 3 or 1, or ``aux_logits`` with
            ``num_classes=0``.
    """
    transform = Renormalize.transform_input(in_chans) if transform_input else None
    layers: list[tuple[str, nn.Module]] = [("transform", transform)] if transform else []
    layers += [("conv1", _unit(7, transform.out_chans if transform else in_chans, 64, stride=2)),
               ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
               ("conv2", _unit(1, 64, 64)), ("conv3", _unit(3, 64, 192)),
               ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True))]
    chs = 192
    # feature levels: the last module before each pool, and the last one (timm has no GoogLeNet)
    feature_info = [{"module": "backbone.conv1", "num_chs": 64, "reduction": 2},
                    {"module": "backbone.conv3", "num_chs": 192, "reduction": 4}, {"reduction": 8}]
    for name, *widths in GOOGLENET_LAYERS:
        if len(widths) == 1:
            layers.append((name, nn.MaxPool2d(widths[0], 2, ceil_mode=True)))
            feature_info.append({"reduction": 2 * feature_info[-1]["reduction"]})
        else:
            layers.append((name, inception_module(chs, *widths)))
            chs = _out_chs(name)
            feature_info[-1].update(module=f"backbone.{name}", num_chs=chs)
    model = GoogLeNet(nn.Sequential(OrderedDict(layers)), create_classifier(chs, num_classes, dropout=dropout),
                      feature_info=feature_info)
    _init_weights(model)
    if aux_logits:
        model.add_aux_classifiers(num_classes, dropout=aux_dropout)
    return model


def _init_weights(model: nn.Module) -> None:
    # torchvision's scheme: truncated N(0, 0.01) convolutions and linear layers, unit BatchNorm
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
