"""Patch embedding: an image cut into non-overlapping patches, each projected to a token (ViT, MLP-Mixer).

Dosovitskiy et al., "An Image is Worth 16x16 Words" (2021): a ``patch_size`` x ``patch_size`` convolution
with the same stride is the linear projection of flattened patches; tokens come out in row-major patch order
(the layout of timm's ``PatchEmbed`` and torchvision's ``conv_proj``).
"""

from __future__ import annotations

import torch
from torch import nn

from .._errors import ImageSizeError
from .padding import _pair


class PatchEmbed(nn.Module):
    """Project ``patch_size`` patches of an ``img_size`` image to ``embed_dim`` channels.

    Args:
        img_size: input size the model is built for (int or ``(h, w)``); inputs must have it.
        patch_size: patch side (int or ``(h, w)``); a remainder of ``img_size`` is cut off, as a strided
            convolution does.
        in_chans: input channels.
        embed_dim: output channels per patch.
        bias: bias of the projection.
        flatten: return tokens ``(B, N, D)``; otherwise the ``(B, D, H/p, W/p)`` map.

    Attributes:
        grid_size: patches per column and per row, ``(H/p, W/p)``.
        num_patches: ``grid_size[0] * grid_size[1]``.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans: int = 3, embed_dim: int = 768, *, bias: bool = True,
                 flatten: bool = True):
        super().__init__()
        self.img_size = _pair(img_size)
        self.patch_size = _pair(patch_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        if min(self.grid_size) < 1:
            raise ImageSizeError(f"img_size {self.img_size} is smaller than patch_size {self.patch_size}")
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.flatten = flatten
        self.proj = nn.Conv2d(in_chans, embed_dim, self.patch_size, stride=self.patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.img_size:
            raise ImageSizeError(f"input size {tuple(x.shape[-2:])} differs from the img_size {self.img_size} "
                                 "this model was built for; build it with img_size set to the input size")
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2) if self.flatten else x

    def extra_repr(self) -> str:
        return f"img_size={self.img_size}, grid_size={self.grid_size}"
