"""Layer primitives (Metalhead's ``Layers``), one concern per file."""

from .affine import Affine
from .attention import MultiHeadSelfAttention
from .branches import ConcatBranches
from .classifier import create_classifier
from .conv_norm import basic_conv_bn, conv_norm, make_act, make_norm
from .divisible import make_divisible
from .drop import DropBlock, StochasticDepth, stochastic_depth
from .init import he_init, trunc_normal_init
from .layer_norm import LayerNorm2d
from .layer_scale import LayerScale
from .mbconv import InvertedResidual, dwsep_conv, fused_mbconv, mbconv
from .mlp import Mlp
from .padding import (
    Conv2dSame,
    MaxPool2dSame,
    create_conv2d,
    is_static_same,
    pad_same,
    same_padding,
    symmetric_padding,
)
from .patch_embed import ImageSizeError, PatchEmbed
from .pool import AdaptiveCatMeanMaxPool, AdaptiveMeanMaxPool, TokenPool, create_pool
from .pos_embed import PositionEmbedding, resample_pos_embed
from .renormalize import Renormalize
from .spatial_gating import SpatialGatingUnit
from .squeeze_excite import EffectiveSqueezeExcite, SqueezeExcite, efficient_squeeze_excite, squeeze_excite

__all__ = sorted([
    "InvertedResidual", "dwsep_conv", "fused_mbconv", "mbconv",
    "AdaptiveCatMeanMaxPool", "AdaptiveMeanMaxPool", "ConcatBranches", "Conv2dSame", "DropBlock",
    "EffectiveSqueezeExcite", "MaxPool2dSame", "Renormalize", "SqueezeExcite", "StochasticDepth", "basic_conv_bn",
    "conv_norm", "create_classifier", "create_conv2d", "create_pool", "efficient_squeeze_excite", "is_static_same",
    "he_init", "make_act", "make_divisible", "make_norm", "pad_same", "same_padding", "squeeze_excite",
    "stochastic_depth",
    "symmetric_padding", "trunc_normal_init",
    "Affine", "ImageSizeError", "LayerNorm2d", "LayerScale", "Mlp", "MultiHeadSelfAttention", "PatchEmbed",
    "PositionEmbedding", "SpatialGatingUnit", "TokenPool", "resample_pos_embed",
])
