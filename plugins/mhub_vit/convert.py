"""Key maps from torchvision's and timm's ViT checkpoints to mhub's layout (torch-free).

mhub layout: ``backbone.patch_embed.proj``, ``backbone.embed.{cls_token,pos_embed}``,
``backbone.blocks.<i>.{norm1,attn.qkv,attn.proj,ls1,norm2,mlp.fc1,mlp.fc2,ls2}``, ``backbone.norm``,
``classifier.fc``. Both maps are pure renamings: torchvision's ``nn.MultiheadAttention`` packs queries, keys
and values in ``in_proj_weight`` in the order and shape of timm's (and our) ``qkv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mhub.keymap import PARAM, rename_keys

_TV_BLOCK = r"encoder\.layers\.encoder_layer_(\d+)\."
TORCHVISION_RULES = [
    (r"class_token", "backbone.embed.cls_token"),
    (r"encoder\.pos_embedding", "backbone.embed.pos_embed"),
    (rf"conv_proj\.{PARAM}", r"backbone.patch_embed.proj.\1"),
    (rf"{_TV_BLOCK}ln_1\.{PARAM}", r"backbone.blocks.\1.norm1.\2"),
    (rf"{_TV_BLOCK}self_attention\.in_proj_{PARAM}", r"backbone.blocks.\1.attn.qkv.\2"),
    (rf"{_TV_BLOCK}self_attention\.out_proj\.{PARAM}", r"backbone.blocks.\1.attn.proj.\2"),
    (rf"{_TV_BLOCK}ln_2\.{PARAM}", r"backbone.blocks.\1.norm2.\2"),
    # MLP children are 0 (fc1) and 3 (fc2); torchvision's files from before v0.13 say linear_1 / linear_2
    (rf"{_TV_BLOCK}mlp\.(?:0|linear_1)\.{PARAM}", r"backbone.blocks.\1.mlp.fc1.\2"),
    (rf"{_TV_BLOCK}mlp\.(?:3|linear_2)\.{PARAM}", r"backbone.blocks.\1.mlp.fc2.\2"),
    (rf"encoder\.ln\.{PARAM}", r"backbone.norm.\1"),
    (rf"heads\.head\.{PARAM}", r"classifier.fc.\1"),
]
TIMM_RULES = [
    (r"cls_token", "backbone.embed.cls_token"),
    (r"pos_embed", "backbone.embed.pos_embed"),
    (rf"patch_embed\.proj\.{PARAM}", r"backbone.patch_embed.proj.\1"),
    (rf"blocks\.(\d+)\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.{PARAM}",
     r"backbone.blocks.\1.\2.\3"),
    (r"blocks\.(\d+)\.(ls1|ls2)\.gamma", r"backbone.blocks.\1.\2.gamma"),
    (rf"norm\.{PARAM}", r"backbone.norm.\1"),
    (rf"head\.{PARAM}", r"classifier.fc.\1"),
]


def from_torchvision(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """torchvision ``VisionTransformer`` (vit_b_16 ... vit_h_14, ImageNet and SWAG weights) to mhub.

    Raises:
        ConversionError: keys with no place in the mhub layout (e.g. a ``representation_size`` pre-logits layer
            or a convolutional stem).
    """
    return rename_keys(state_dict, TORCHVISION_RULES, layout="torchvision ViT")


def from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``VisionTransformer`` (class-token pooling, final norm, optional LayerScale) to mhub.

    The ``pre_logits`` layer of old in21k checkpoints is left out, as timm itself leaves it out.

    Raises:
        ConversionError: keys with no place in the mhub layout (e.g. ``fc_norm`` of average-pooled variants,
            register tokens, QK-norm).
    """
    return rename_keys(state_dict, TIMM_RULES, layout="timm ViT", drop=[r"pre_logits\..*"])
