"""The dense classifier of AlexNet and VGG: pool to a fixed grid, flatten, hidden layers, final layer."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import nn


def mlp_classifier(in_chs: int, num_classes: int, *, pool_size: int, hidden: Sequence[int] = (4096, 4096),
                   dropout: float = 0.5, dropout_first: bool = False,
                   act_layer: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """A multi-layer perceptron head over a feature map.

    Args:
        in_chs: channels of the backbone output.
        num_classes: outputs of the final linear layer; ``0`` leaves it out (the last hidden activations, or the
            flattened pooled features when ``hidden`` is empty, come out).
        pool_size: the feature map is average-pooled adaptively to ``pool_size`` x ``pool_size`` (identity at
            the training resolution) and flattened.
        hidden: widths of the hidden linear layers, each followed by ``act_layer``.
        dropout: dropout probability of the ``drop<i>`` module next to each hidden layer.
        dropout_first: put each dropout before its hidden layer (AlexNet) rather than after its activation (VGG).
        act_layer: activation after each hidden layer.

    Returns:
        ``nn.Sequential`` with children ``pool``, ``flatten``, then ``fc<i>``, ``act<i>`` and ``drop<i>`` for
        each hidden layer ``i`` (1-based), then ``fc``.
    """
    layers: list[tuple[str, nn.Module]] = [("pool", nn.AdaptiveAvgPool2d(pool_size)), ("flatten", nn.Flatten(1))]
    features = in_chs * pool_size * pool_size
    for i, width in enumerate(hidden, 1):
        unit = [(f"fc{i}", nn.Linear(features, width)), (f"act{i}", act_layer())]
        drop = (f"drop{i}", nn.Dropout(dropout))
        layers += [drop, *unit] if dropout_first else [*unit, drop]
        features = width
    if num_classes:
        layers.append(("fc", nn.Linear(features, num_classes)))
    return nn.Sequential(OrderedDict(layers))
