"""Vision Transformer (ViT): Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021 (arXiv:2010.11929).

Matched output for output, in the project's test suite, with ``torchvision.models.vision_transformer``
(torchvision 0.29) and ``timm.models.vision_transformer`` (timm 1.0, class-token models); their checkpoints load
through :mod:`mhub_vit.convert`. Attention runs on ``scaled_dot_product_attention``.

Layout: ``backbone`` = ``patch_embed`` (strided convolution), ``embed`` (class token and position embedding),
``blocks.<i>`` (pre-norm encoder blocks), ``norm``; it returns the normalised tokens ``(B, 1 + N, D)``, as
timm's ``forward_features`` does. ``classifier`` = ``pool`` (the class token), ``flatten``, optional
``dropout``, ``fc`` (timm's ``forward_head``); with ``num_classes=0`` the model returns the pooled features.

Three levels, as in Metalhead 0.8:
- high: :func:`ViT` (``ViT("base", patch_size=16)``; ``pretrained``, ``in_chans``, ``num_classes``, ``img_size``);
- mid: :func:`vit`, every option (``img_size``, LayerScale, stochastic depth, dropouts);
- low: :class:`EncoderBlock` over :mod:`mhub.layers` (``MultiHeadSelfAttention``, ``Mlp``, ``LayerScale``,
  ``PatchEmbed``, ``PositionEmbedding``).

A model built at another ``img_size`` than its weights resamples their position embedding (bicubic,
anti-aliased, class token kept), equal to timm's ``resample_abs_pos_embed``.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

from torch import nn

import mhub
from mhub import ConfigError
from mhub._model import BackboneClassifier
from mhub.builders import linear_schedule
from mhub.families import config_name
from mhub.layers import (
    LayerScale,
    Mlp,
    MultiHeadSelfAttention,
    PatchEmbed,
    PositionEmbedding,
    StochasticDepth,
    create_classifier,
)
from mhub.layers.conv_norm import LayerFactory
from mhub.layers.init import trunc_normal_init

from . import configs

LAYER_NORM = partial(nn.LayerNorm, eps=1e-6)  # ViT's LayerNorm epsilon (JAX original, torchvision, timm)


class ViTConfigError(ConfigError):
    """An unknown or missing ViT configuration (the message lists the valid ones)."""


class EncoderBlock(nn.Module):
    """A pre-norm transformer encoder block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp_ratio: MLP width over ``dim``.
        qkv_bias: bias of the ``qkv`` projection.
        init_values: LayerScale ``ls1``/``ls2`` on both branches with this initial value; ``None`` for none.
        drop_path_rate: stochastic depth of both branches.
        attn_drop, proj_drop: dropout on attention weights; after the attention and MLP projections.
        act_layer, norm_layer: MLP activation and normalisation factories.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, *, qkv_bias: bool = True,
                 init_values: float | None = None, drop_path_rate: float = 0.0, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, act_layer: LayerFactory = nn.GELU, norm_layer: LayerFactory = LAYER_NORM):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                           proj_drop=proj_drop)
        self.ls1 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.drop_path = StochasticDepth(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x):
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


def _dims(size: str | None, embed_dim: int | None, depth: int | None, num_heads: int | None) -> tuple[int, int, int]:
    """``(embed_dim, depth, num_heads)``: the size's table row with the given values in its place."""
    if size is not None and size not in configs.SIZES:
        raise ViTConfigError(f"unknown ViT size {size!r}; valid: {', '.join(configs.SIZES)}")
    table = configs.SIZES[size] if size is not None else (None, None, None)
    dims = tuple(given if given is not None else row for given, row in zip((embed_dim, depth, num_heads), table))
    if None in dims:
        raise ViTConfigError(f"vit needs a size ({', '.join(configs.SIZES)}) or all of embed_dim, depth and num_heads")
    return dims  # type: ignore[return-value]


def vit(size: str | None = None, patch_size: int = 16, *, img_size: int | tuple[int, int] = 224,
        embed_dim: int | None = None, depth: int | None = None, num_heads: int | None = None, mlp_ratio: float = 4.0,
        qkv_bias: bool = True, init_values: float | None = None, class_token: bool = True,
        drop_rate: float | None = None, pos_drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0, drop_path_rate: float = 0.0, act_layer: LayerFactory = nn.GELU,
        norm_layer: LayerFactory = LAYER_NORM, num_classes: int = 1000, in_chans: int = 3) -> BackboneClassifier:
    """Build a Vision Transformer.

    Args:
        size: ``"tiny"``, ``"small"``, ``"base"``, ``"large"`` or ``"huge"`` (:data:`mhub_vit.configs.SIZES`);
            ``embed_dim``, ``depth``, ``num_heads`` override its entries.
        patch_size: patch side in pixels.
        img_size: input size (int or ``(h, w)``); inputs must have it, and weights trained at another size get
            their position embedding resampled when loaded.
        embed_dim, depth, num_heads: token width, encoder blocks, attention heads.
        mlp_ratio: MLP width over ``embed_dim``.
        qkv_bias: bias of the attention ``qkv`` projection.
        init_values: LayerScale in every block with this initial value (CaiT / DeiT III); ``None`` for none.
        class_token: prepend a class token (pooling then takes it; without it, the mean token).
        drop_rate: classifier dropout (``None``: no dropout module).
        pos_drop_rate: dropout after the position embedding.
        attn_drop_rate, proj_drop_rate: attention-weight and projection dropout in every block.
        drop_path_rate: stochastic depth reached by the last block (linear in the block index, as timm).
        act_layer, norm_layer: MLP activation and normalisation factories.
        num_classes: classifier outputs (0: the model returns the pooled features).
        in_chans: input channels.

    Returns:
        A :class:`mhub.BackboneClassifier` (layout in the module docstring).

    Raises:
        ViTConfigError: an unknown size, or neither a size nor all three dimensions.
    """
    embed_dim, depth, num_heads = _dims(size, embed_dim, depth, num_heads)
    patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        patch_embed=patch_embed, embed=PositionEmbedding(patch_embed.grid_size, embed_dim, class_token=class_token))
    if pos_drop_rate:
        parts["pos_drop"] = nn.Dropout(pos_drop_rate)
    parts["blocks"] = nn.Sequential(*(
        EncoderBlock(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, init_values=init_values,
                     drop_path_rate=linear_schedule(drop_path_rate, i, depth), attn_drop=attn_drop_rate,
                     proj_drop=proj_drop_rate, act_layer=act_layer, norm_layer=norm_layer)
        for i in range(depth)))
    parts["norm"] = norm_layer(embed_dim)
    classifier = create_classifier(embed_dim, num_classes, pool="token" if class_token else "avg_tokens",
                                   dropout=drop_rate)
    # timm's features_only levels: every block's tokens as a stride-patch_size map, the last 3 by default
    feature_info = [{"module": f"backbone.blocks.{i}", "num_chs": embed_dim, "reduction": patch_size, "layout": "NLC",
                     "prefix_tokens": int(class_token)} for i in range(depth)]
    model = BackboneClassifier(nn.Sequential(parts), classifier, feature_info=feature_info, out_indices=3)
    # timm's ViT scheme: truncated-normal (std 0.02) linear layers with zero bias; the embeddings initialise
    # themselves (PositionEmbedding.reset_parameters), the patch projection keeps PyTorch's default.
    trunc_normal_init(model, 0.02, types=nn.Linear)
    return model


# -- high level ------------------------------------------------------------------------------------
def ViT(size: str | None = None, patch_size: int | None = None, *, img_size: int | None = None,
        pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """A Vision Transformer by size and patch size, e.g. ``ViT("base", patch_size=16)`` (``vit_b_16``).

    Args:
        size: ``"tiny"``, ``"small"``, ``"base"``, ``"large"`` or ``"huge"`` (required).
        patch_size: patch side (required); the registered pairs are listed in :data:`mhub_vit.configs.MODELS`,
            others are built without weights.
        img_size: input size; default 224, or the size the weights were trained at when ``pretrained``.
        pretrained: load the registry's default weights of the pair (``mhub.create(name, pretrained=True)``).
        in_chans: input channels.
        num_classes: classifier outputs (default 1000, or the weights' classes when pretrained).
        **kwargs: options of :func:`vit` (stochastic depth, LayerScale, dropouts).

    Raises:
        ViTConfigError: a missing or unknown size or patch size, or ``pretrained`` for an unregistered pair.
    """
    # a missing or unknown size raises here, listing the valid ones; any patch size builds (registered or not)
    size = config_name("ViT", size, {s: s for s in configs.SIZES}, what="a size", error=ViTConfigError)
    registered = sorted(p for s, p, *_ in configs.MODELS.values() if s == size)
    if patch_size is None:
        raise ViTConfigError(f"ViT({size!r}) needs a patch_size; registered: {', '.join(map(str, registered))}")
    name = configs.name_for(size, patch_size)
    if img_size is not None:
        kwargs["img_size"] = img_size
    if name in configs.MODELS:
        return mhub.create(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if pretrained:
        raise ViTConfigError(f"no pretrained ViT {size} with patch_size {patch_size}; registered patch sizes: "
                             f"{', '.join(map(str, registered))}")
    return vit(size, patch_size, num_classes=1000 if num_classes is None else num_classes, in_chans=in_chans,
               **kwargs)
