"""Multi-head self-attention on ``torch.nn.functional.scaled_dot_product_attention``.

Vaswani et al., "Attention Is All You Need" (2017), as ViT uses it (Dosovitskiy et al., 2021): one fused
``qkv`` projection (queries, keys, values in that order, heads contiguous within each; timm's ``Attention``
layout, and torchvision's ``in_proj_weight``), attention per head, an output projection ``proj``.
``scaled_dot_product_attention`` picks the fused flash / memory-efficient kernels where the device has them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadSelfAttention(nn.Module):
    """Self-attention over tokens ``(B, N, dim)``, returning ``(B, N, dim)``.

    Args:
        dim: token width; a multiple of ``num_heads``.
        num_heads: attention heads (each ``dim // num_heads`` wide).
        qkv_bias: bias of the ``qkv`` projection.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.

    Raises:
        ValueError: ``dim`` not divisible by ``num_heads``.
    """

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(batch, tokens, dim)))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, attn_drop={self.attn_drop}"
