"""AlexNet, as torchvision 0.29's ``alexnet.py`` builds it (its checkpoint loads through ``torchvision.classic``).

Paper: Krizhevsky, "One weird trick for parallelizing convolutional neural networks" (2014, arXiv:1404.5997),
the single-tower variant of Krizhevsky et al. (NeurIPS 2012) that torchvision's weights were trained with:
64-192-384-256-256 channels, no local response normalisation.

Layout: ``backbone.conv1`` ... ``backbone.conv5`` (each a :func:`~mhub.layers.conv_norm` without a norm:
``conv``, ``act``) with max pools ``pool1``, ``pool2``, ``pool5``; the classifier is
:func:`mhub_classic.heads.mlp_classifier` over a 6x6 grid (``drop1``, ``fc1``, ``act1``, ``drop2``, ``fc2``,
``act2``, ``fc``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from mhub._model import BackboneClassifier
from mhub.layers import conv_norm

from .heads import mlp_classifier


def alexnet(*, num_classes: int = 1000, in_chans: int = 3, hidden: Sequence[int] = (4096, 4096),
            dropout: float = 0.5) -> BackboneClassifier:
    """Build AlexNet.

    Args:
        num_classes: classifier outputs (0: no final linear layer).
        in_chans: input channels.
        hidden: widths of the classifier's hidden layers.
        dropout: dropout before each hidden layer.

    Returns:
        A :class:`mhub.BackboneClassifier`; at 224 px the backbone outputs 256 x 6 x 6.
    """
    conv = dict(act_layer=nn.ReLU, norm_layer=None)
    backbone = nn.Sequential(OrderedDict(
        conv1=conv_norm(11, in_chans, 64, stride=4, padding=2, **conv),
        pool1=nn.MaxPool2d(3, 2),
        conv2=conv_norm(5, 64, 192, **conv),
        pool2=nn.MaxPool2d(3, 2),
        conv3=conv_norm(3, 192, 384, **conv),
        conv4=conv_norm(3, 384, 256, **conv),
        conv5=conv_norm(3, 256, 256, **conv),
        pool5=nn.MaxPool2d(3, 2),
    ))
    classifier = mlp_classifier(256, num_classes, pool_size=6, hidden=hidden, dropout=dropout, dropout_first=True)
    # the last module before each change of resolution (timm has no AlexNet; its rule for other CNNs)
    feature_info = [{"module": "backbone.conv1", "num_chs": 64, "reduction": 4},
                    {"module": "backbone.conv2", "num_chs": 192, "reduction": 8},
                    {"module": "backbone.conv5", "num_chs": 256, "reduction": 16},
                    {"module": "backbone.pool5", "num_chs": 256, "reduction": 32}]
    return BackboneClassifier(backbone, classifier, feature_info=feature_info)
