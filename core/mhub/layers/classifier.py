"""Classifier heads (Metalhead's ``create_classifier``): global pool, flatten, optional norm and hidden layer,
dense."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

from .pool import create_pool


def create_classifier(in_chs: int, num_classes: int, *, pool: str | None = "avg", dropout: float | None = None,
                      hidden: int | None = None, act_layer: Callable[[], nn.Module] = nn.ReLU,
                      norm_layer: Callable[[int], nn.Module] | None = None, bias: bool = True) -> nn.Sequential:
    """A classification head over a feature map or a token sequence.

    Args:
        in_chs: channels of the backbone output.
        num_classes: outputs of the final linear layer; ``0`` leaves it out (pooled features come out).
        pool: global pooling (see :func:`mhub.layers.create_pool`).
        norm_layer: optional normalisation of the pooled features (``norm_layer(features)``; ConvNeXt's
            LayerNorm).
        dropout: ``None`` adds no dropout module at all; a float (``0.0`` included) adds
            ``nn.Dropout(dropout)`` before the final linear layer.
        hidden: width of an optional hidden linear layer (followed by ``act_layer``) before the dropout.
        act_layer: activation after the hidden layer.
        bias: bias on the linear layers.

    Returns:
        ``nn.Sequential`` with children ``pool``, ``flatten``, ``norm`` when ``norm_layer`` is set, ``hidden``
        and ``act`` when ``hidden`` is set, ``dropout`` when ``dropout`` is not ``None``, and ``fc`` unless
        ``num_classes`` is 0.
    """
    pool_layer, multiplier = create_pool(pool)
    layers: list[tuple[str, nn.Module]] = [("pool", pool_layer), ("flatten", nn.Flatten(1))]
    features = in_chs * multiplier
    if norm_layer is not None:
        layers.append(("norm", norm_layer(features)))
    if hidden:
        layers += [("hidden", nn.Linear(features, hidden, bias=bias)), ("act", act_layer())]
        features = hidden
    if dropout is not None:
        layers.append(("dropout", nn.Dropout(dropout)))
    if num_classes:
        layers.append(("fc", nn.Linear(features, num_classes, bias=bias)))
    return nn.Sequential(OrderedDict(layers))
