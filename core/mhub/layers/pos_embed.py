"""Class token and learned absolute position embedding (ViT), resampled for another input size.

Dosovitskiy et al., "An Image is Worth 16x16 Words" (2021): a learned class token is prepended to the patch
tokens and a learned embedding is added at every position, class token included (timm's default
``no_embed_class=False`` layout; torchvision's ``class_token`` / ``encoder.pos_embedding``). A model built for
another image size resamples a checkpoint's patch-position grid by bicubic, anti-aliased interpolation and keeps
the class token's entry, as the paper's fine-tuning at higher resolution and timm's ``resample_abs_pos_embed`` do.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def resample_pos_embed(pos_embed: torch.Tensor, new_grid: Sequence[int], old_grid: Sequence[int] | None = None,
                       *, num_prefix_tokens: int = 1, interpolation: str = "bicubic",
                       antialias: bool = True) -> torch.Tensor:
    """Resize a ``(1, prefix + H * W, D)`` position embedding to a ``new_grid`` of patches.

    Args:
        pos_embed: the embedding; its first ``num_prefix_tokens`` entries (class token) are kept as they are.
        new_grid: ``(H', W')`` patches of the new input size.
        old_grid: ``(H, W)`` of ``pos_embed``; default: the square grid its length implies.
        num_prefix_tokens: leading entries that belong to no patch.
        interpolation: ``F.interpolate`` mode.
        antialias: anti-alias when shrinking (``F.interpolate``'s flag: only the bilinear and bicubic modes
            accept it, so pass ``antialias=False`` with another ``interpolation``).

    Returns:
        ``(1, prefix + H' * W', D)`` in the input's dtype (the interpolation runs in float32 or wider).

    Raises:
        ValueError: no ``old_grid`` and the patch entries do not form a square.
    """
    new_grid = tuple(int(n) for n in new_grid)
    patches = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(patches)
        if side * side != patches:
            raise ValueError(f"{patches} position entries are not a square grid; give old_grid")
        old_grid = (side, side)
    old_grid = tuple(int(n) for n in old_grid)
    if old_grid == new_grid:
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = grid.shape[-1]
    work = grid.to(torch.promote_types(grid.dtype, torch.float32))  # interpolate has no half kernels on CPU
    work = work.reshape(1, *old_grid, dim).permute(0, 3, 1, 2)
    work = F.interpolate(work, size=new_grid, mode=interpolation, antialias=antialias)
    grid = work.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


class PositionEmbedding(nn.Module):
    """Prepend the class token to patch tokens ``(B, H * W, D)`` and add the position embedding.

    Args:
        grid_size: ``(H, W)`` patches (int for a square grid).
        dim: token width.
        class_token: learn and prepend a class token (``cls_token``, shape ``(1, 1, D)``).

    Loading a state dict whose ``pos_embed`` was trained on another (square) grid resamples it to this grid,
    through ``load_state_dict`` and through :func:`mhub.create` alike (see :meth:`adapt_state_dict`).
    """

    def __init__(self, grid_size, dim: int, *, class_token: bool = True):
        super().__init__()
        self.grid_size = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        self.num_prefix_tokens = 1 if class_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if class_token else None
        tokens = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # timm's ViT initialisation
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embed

    def adapt_state_dict(self, state_dict: MutableMapping[str, torch.Tensor], prefix: str) -> None:
        """Resample ``state_dict[prefix + "pos_embed"]`` in place when it was trained on another square grid.

        Entries of another width or a non-square grid are left alone for the caller's shape check to report.
        """
        key = prefix + "pos_embed"
        theirs = state_dict.get(key)
        if theirs is None or theirs.dim() != 3 or theirs.shape == self.pos_embed.shape \
                or theirs.shape[-1] != self.pos_embed.shape[-1]:
            return
        patches = theirs.shape[1] - self.num_prefix_tokens
        if patches > 0 and math.isqrt(patches) ** 2 == patches:
            state_dict[key] = resample_pos_embed(theirs, self.grid_size, num_prefix_tokens=self.num_prefix_tokens)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.adapt_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"grid_size={self.grid_size}, num_prefix_tokens={self.num_prefix_tokens}"
