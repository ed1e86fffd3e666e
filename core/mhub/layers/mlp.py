"""The transformer MLP block: two linear layers around an activation, with an optional gate between.

``fc1 -> act -> dropout -> gate -> fc2 -> dropout`` on the last axis; the layout of timm's ``Mlp`` and, with
a ``gate_layer`` that halves the width (gMLP's :class:`~mhub.layers.SpatialGatingUnit`), of its ``GatedMlp``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Mlp(nn.Module):
    """``fc2(gate(act(fc1(x))))`` over the last axis.

    Args:
        in_features: input width.
        hidden_features: width after ``fc1``.
        out_features: output width (default ``in_features``).
        act_layer: activation factory (``nn.GELU``).
        gate_layer: optional factory called with ``hidden_features``; it must return half that width
            (gMLP's spatial gating unit), which ``fc2`` then takes.
        bias: bias of both linear layers.
        drop: dropout after the activation and after ``fc2``.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None, *,
                 act_layer: Callable[[], nn.Module] = nn.GELU, gate_layer: Callable[[int], nn.Module] | None = None,
                 bias: bool = True, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop = nn.Dropout(drop)
        if gate_layer is not None:
            if hidden_features % 2:
                raise ValueError(f"a gated MLP needs an even hidden width, got {hidden_features}")
            self.gate = gate_layer(hidden_features)
            hidden_features //= 2
        else:
            self.gate = nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gate(self.drop(self.act(self.fc1(x))))
        return self.drop(self.fc2(x))
