"""MLP-Mixer, ResMLP and gMLP: all-MLP vision networks on one skeleton.

- MLP-Mixer: Tolstikhin et al., NeurIPS 2021 (arXiv:2105.01601);
- ResMLP: Touvron et al., TPAMI 2022 (arXiv:2105.03404);
- gMLP: Liu et al., "Pay Attention to MLPs", NeurIPS 2021 (arXiv:2105.08050).

Matched output for output with ``timm.models.mlp_mixer`` (timm 1.0), whose checkpoints load through
:mod:`mhub_mlp.convert`.

Layout: ``backbone.stem`` (:class:`mhub.layers.PatchEmbed`), ``backbone.blocks.<i>`` (one of :data:`BLOCKS`),
``backbone.norm``; the backbone returns the normalised tokens ``(B, N, D)`` (timm's ``forward_features``).
``classifier``: ``pool`` (mean over tokens), ``flatten``, optional ``dropout``, ``fc``. The token-mixing layers
are ``N x N``, so a model takes inputs of exactly the ``img_size`` it was built for.

Three levels, as in Metalhead 0.8:
- high: :func:`MLPMixer` (``MLPMixer("base", 16)``), :func:`ResMLP` (``ResMLP(12)``), :func:`gMLP`
  (``gMLP("small")``);
- mid: :func:`mlp_mixer` (block type, sizes, stochastic depth, dropouts, LayerScale init);
- low: :class:`MixerBlock`, :class:`ResMLPBlock`, :class:`SpatialGatingBlock` over :mod:`mhub.layers`.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

from torch import nn

import mhub
from mhub import ConfigError
from mhub._model import BackboneClassifier
from mhub.builders import constant_schedule
from mhub.families import config_name
from mhub.layers import Affine, LayerScale, Mlp, PatchEmbed, SpatialGatingUnit, StochasticDepth, create_classifier
from mhub.layers.conv_norm import LayerFactory

LAYER_NORM = partial(nn.LayerNorm, eps=1e-6)  # timm's Mixer and gMLP LayerNorm epsilon


class MLPConfigError(ConfigError):
    """An unknown or missing MLP-Mixer / ResMLP / gMLP configuration (the message lists the valid ones)."""


def _drop_path(rate: float) -> nn.Module:
    return StochasticDepth(rate) if rate > 0 else nn.Identity()


class MixerBlock(nn.Module):
    """MLP-Mixer: ``x + mlp_tokens(norm1(x)ᵀ)ᵀ``, then ``x + mlp_channels(norm2(x))``.

    Args:
        dim: token width.
        seq_len: tokens.
        mlp_ratio: ``(token MLP, channel MLP)`` widths over ``dim`` (``(0.5, 4.0)``), or one ratio for both.
        drop_path_rate: stochastic depth of both branches.
        proj_drop: dropout inside the MLPs.
        act_layer, norm_layer: activation and normalisation factories.
    """

    def __init__(self, dim: int, seq_len: int, mlp_ratio: float | tuple[float, float] = (0.5, 4.0), *,
                 drop_path_rate: float = 0.0, proj_drop: float = 0.0, act_layer: LayerFactory = nn.GELU,
                 norm_layer: LayerFactory = LAYER_NORM):
        super().__init__()
        tokens_ratio, channels_ratio = mlp_ratio if isinstance(mlp_ratio, tuple) else (mlp_ratio, mlp_ratio)
        self.norm1 = norm_layer(dim)
        self.mlp_tokens = Mlp(seq_len, int(tokens_ratio * dim), act_layer=act_layer, drop=proj_drop)
        self.norm2 = norm_layer(dim)
        self.mlp_channels = Mlp(dim, int(channels_ratio * dim), act_layer=act_layer, drop=proj_drop)
        self.drop_path = _drop_path(drop_path_rate)

    def forward(self, x):
        x = x + self.drop_path(self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.mlp_channels(self.norm2(x)))


class ResMLPBlock(nn.Module):
    """ResMLP: ``x + ls1(linear_tokens(norm1(x)ᵀ)ᵀ)``, then ``x + ls2(mlp_channels(norm2(x)))``, with
    :class:`mhub.layers.Affine` as the norms and :class:`mhub.layers.LayerScale` scales.

    Args:
        dim: token width.
        seq_len: tokens.
        mlp_ratio: channel MLP width over ``dim``.
        init_values: initial LayerScale (1e-4 for 12 blocks, 1e-5 for 24, 1e-6 deeper, as the paper).
        drop_path_rate, proj_drop, act_layer, norm_layer: as :class:`MixerBlock`.
    """

    def __init__(self, dim: int, seq_len: int, mlp_ratio: float = 4.0, *, init_values: float = 1e-4,
                 drop_path_rate: float = 0.0, proj_drop: float = 0.0, act_layer: LayerFactory = nn.GELU,
                 norm_layer: LayerFactory = Affine):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.linear_tokens = nn.Linear(seq_len, seq_len)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = norm_layer(dim)
        self.mlp_channels = Mlp(dim, int(mlp_ratio * dim), act_layer=act_layer, drop=proj_drop)
        self.ls2 = LayerScale(dim, init_values)
        self.drop_path = _drop_path(drop_path_rate)

    def forward(self, x):
        x = x + self.drop_path(self.ls1(self.linear_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)))
        return x + self.drop_path(self.ls2(self.mlp_channels(self.norm2(x))))


class SpatialGatingBlock(nn.Module):
    """gMLP: ``x + mlp_channels(norm(x))`` where the MLP is gated by a :class:`mhub.layers.SpatialGatingUnit`.

    Args:
        dim: token width.
        seq_len: tokens.
        mlp_ratio: MLP width over ``dim`` before the gate halves it.
        drop_path_rate, proj_drop, act_layer, norm_layer: as :class:`MixerBlock`.
    """

    def __init__(self, dim: int, seq_len: int, mlp_ratio: float = 6.0, *, drop_path_rate: float = 0.0,
                 proj_drop: float = 0.0, act_layer: LayerFactory = nn.GELU, norm_layer: LayerFactory = LAYER_NORM):
        super().__init__()
        self.norm = norm_layer(dim)
        self.mlp_channels = Mlp(dim, int(mlp_ratio * dim), act_layer=act_layer, drop=proj_drop,
                                gate_layer=partial(SpatialGatingUnit, seq_len=seq_len))
        self.drop_path = _drop_path(drop_path_rate)

    def forward(self, x):
        return x + self.drop_path(self.mlp_channels(self.norm(x)))


# block name -> (class, norm factory of the blocks and of the final norm)
BLOCKS: dict[str, tuple[type[nn.Module], LayerFactory]] = {
    "mixer": (MixerBlock, LAYER_NORM),
    "resmlp": (ResMLPBlock, Affine),
    "gmlp": (SpatialGatingBlock, LAYER_NORM),
}


def mlp_mixer(block: str, patch_size: int, num_blocks: int, embed_dim: int, *, img_size: int = 224,
              mlp_ratio: float | tuple[float, float] | None = None, init_values: float | None = None,
              drop_path_rate: float = 0.0, proj_drop_rate: float = 0.0, drop_rate: float | None = None,
              act_layer: LayerFactory = nn.GELU, num_classes: int = 1000, in_chans: int = 3) -> BackboneClassifier:
    """Build an MLP-Mixer, ResMLP or gMLP.

    Args:
        block: ``"mixer"``, ``"resmlp"`` or ``"gmlp"`` (:data:`BLOCKS`).
        patch_size: patch side in pixels.
        num_blocks: blocks.
        embed_dim: token width.
        img_size: input size; it fixes the number of tokens the token-mixing layers take.
        mlp_ratio: MLP width(s) over ``embed_dim``; default the block's own (Mixer ``(0.5, 4)``, ResMLP 4, gMLP 6).
        init_values: ResMLP's initial LayerScale (default 1e-4).
        drop_path_rate: stochastic depth of every block (the same for all, as timm).
        proj_drop_rate: dropout inside the MLPs.
        drop_rate: classifier dropout (``None``: no dropout module).
        act_layer: MLP activation.
        num_classes: classifier outputs (0: the model returns the pooled features).
        in_chans: input channels.

    Returns:
        A :class:`mhub.BackboneClassifier` (layout in the module docstring).

    Raises:
        MLPConfigError: an unknown block, or ``init_values`` for a block without LayerScale.
    """
    if block not in BLOCKS:
        raise MLPConfigError(f"unknown block {block!r}; valid: {', '.join(BLOCKS)}")
    block_cls, norm_layer = BLOCKS[block]
    options: dict[str, Any] = dict(proj_drop=proj_drop_rate, act_layer=act_layer, norm_layer=norm_layer)
    if mlp_ratio is not None:
        options["mlp_ratio"] = mlp_ratio
    if init_values is not None:
        if block_cls is not ResMLPBlock:
            raise MLPConfigError(f"init_values is a ResMLP option; the {block!r} block has no LayerScale")
        options["init_values"] = init_values
    stem = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
    blocks = nn.Sequential(*(
        block_cls(embed_dim, stem.num_patches, drop_path_rate=constant_schedule(drop_path_rate, i, num_blocks),
                  **options)
        for i in range(num_blocks)))
    backbone = nn.Sequential(OrderedDict(stem=stem, blocks=blocks, norm=norm_layer(embed_dim)))
    # timm's features_only levels: every block's tokens as a stride-patch_size map, the last 3 by default
    feature_info = [{"module": f"backbone.blocks.{i}", "num_chs": embed_dim, "reduction": patch_size, "layout": "NLC"}
                    for i in range(num_blocks)]
    model = BackboneClassifier(backbone, create_classifier(embed_dim, num_classes, pool="avg_tokens",
                                                           dropout=drop_rate),
                               feature_info=feature_info, out_indices=3)
    _init_weights(model)
    return model


def _init_weights(model: nn.Module) -> None:
    # timm's Mixer scheme for linear layers (Xavier-uniform, zero bias); the gating unit keeps its own
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    for module in model.modules():
        if isinstance(module, SpatialGatingUnit):
            module.reset_parameters()


# -- high level ------------------------------------------------------------------------------------
_config_name = partial(config_name, error=MLPConfigError)


def MLPMixer(size: str | None = None, patch_size: int | None = None, *, pretrained: bool = False, in_chans: int = 3,
             num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """MLP-Mixer by size and patch size, e.g. ``MLPMixer("base", 16)`` (``mixer_b16_224``).

    Args:
        size: ``"small"``, ``"base"`` or ``"large"``.
        patch_size: 16 or 32.
        pretrained, in_chans, num_classes: as every constructor; ``**kwargs`` are :func:`mlp_mixer` options.

    Raises:
        MLPConfigError: a missing or unknown configuration.
    """
    table = {(name, patch): f"mixer_{name[0]}{patch}_224" for name in ("small", "base", "large") for patch in (16, 32)}
    name = _config_name("MLPMixer", (size, patch_size), table, what="(size, patch_size)")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def ResMLP(depth: int | None = None, *, big: bool = False, pretrained: bool = False, in_chans: int = 3,
           num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """ResMLP-``depth``, e.g. ``ResMLP(12)``; ``ResMLP(24, big=True)`` is ResMLP-B24 (patch 8, width 768).

    Raises:
        MLPConfigError: a missing or unknown depth.
    """
    table = {(12, False): "resmlp_12_224", (24, False): "resmlp_24_224", (36, False): "resmlp_36_224",
             (24, True): "resmlp_big_24_224"}
    name = _config_name("ResMLP", (depth, big), table, what="(depth, big)")
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)


def gMLP(size: str | None = None, *, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
         **kwargs: Any) -> nn.Module:
    """gMLP by size, e.g. ``gMLP("small")`` (``gmlp_s16_224``): ``"tiny"``, ``"small"`` or ``"base"``.

    Raises:
        MLPConfigError: a missing or unknown size.
    """
    table = {"tiny": "gmlp_ti16_224", "small": "gmlp_s16_224", "base": "gmlp_b16_224"}
    return mhub.create(_config_name("gMLP", size, table, what="a size"), pretrained, num_classes, in_chans, **kwargs)
