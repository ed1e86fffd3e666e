"""gMLP's spatial gating unit.

Liu et al., "Pay Attention to MLPs" (2021): the channels split in halves ``u``, ``v``; ``v`` is normalised
and mixed across tokens by a linear layer, then gates ``u``. Layout of timm's ``SpatialGatingUnit``
(``norm``, ``proj``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class SpatialGatingUnit(nn.Module):
    """``u * proj(norm(v))ᵀ`` for ``(u, v)`` = the two channel halves of ``(B, N, dim)``; returns ``dim // 2``.

    Args:
        dim: input channels (even).
        seq_len: tokens ``N`` (the token-mixing layer is ``N x N``, so the input size is fixed).
        norm_layer: normalisation of ``v`` (``nn.LayerNorm``, eps 1e-5 as in timm).

    The token projection starts near zero with unit bias (the paper's initialisation), so the unit starts as
    ``u`` itself.
    """

    def __init__(self, dim: int, seq_len: int, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm):
        super().__init__()
        if dim % 2:
            raise ValueError(f"the spatial gating unit splits channels in halves; dim {dim} is odd")
        self.norm = norm_layer(dim // 2)
        self.proj = nn.Linear(seq_len, seq_len)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.proj.weight, std=1e-6)
        nn.init.ones_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = x.chunk(2, dim=-1)
        v = self.proj(self.norm(v).transpose(-1, -2)).transpose(-1, -2)
        return u * v
