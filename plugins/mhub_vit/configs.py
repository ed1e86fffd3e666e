"""The Vision Transformer family as data (torch-free: ``plugin.py`` lists it without building anything).

Names follow torchvision (``vit_b_16``: size letter, patch size) and extend its scheme to timm's sizes
(``vit_ti_16``, ``vit_s_32``); timm's names (``vit_base_patch16_224``) are registered as aliases. Parameter
counts are at the default ``img_size`` of 224 px: torchvision's published ``num_params`` where torchvision has
the model, else the count of timm's model of the same shape (the tests check both against the libraries).
"""

from __future__ import annotations

PAPER = ("Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale, "
         "ICLR 2021 (arXiv:2010.11929)")

# size: (embed_dim, depth, num_heads); the MLP is mlp_ratio = 4 times embed_dim wide
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
LETTERS = {"tiny": "ti", "small": "s", "base": "b", "large": "l", "huge": "h"}

# name: (size, patch_size, parameters at 224 px and 1000 classes, upstream that has it)
MODELS: dict[str, tuple[str, int, int, str]] = {
    "vit_ti_16": ("tiny", 16, 5717416, "timm"),
    "vit_s_16": ("small", 16, 22050664, "timm"),
    "vit_s_32": ("small", 32, 22878952, "timm"),
    "vit_b_8": ("base", 8, 86576872, "timm"),
    "vit_b_16": ("base", 16, 86567656, "torchvision"),
    "vit_b_32": ("base", 32, 88224232, "torchvision"),
    "vit_l_16": ("large", 16, 304326632, "torchvision"),
    "vit_l_32": ("large", 32, 306535400, "torchvision"),
    "vit_h_14": ("huge", 14, 632045800, "torchvision"),
}

# timm's names for the same architectures; "_384" names stand for the 384 px weight sets, tagged "<tag>_384"
# in our manifest (generated from timm's metadata) and loaded at img_size 384 (their model_args).
TIMM_NAMES: dict[str, str] = {
    "vit_tiny_patch16_224": "vit_ti_16", "vit_tiny_patch16_384": "vit_ti_16",
    "vit_small_patch16_224": "vit_s_16", "vit_small_patch16_384": "vit_s_16",
    "vit_small_patch32_224": "vit_s_32", "vit_small_patch32_384": "vit_s_32",
    "vit_base_patch8_224": "vit_b_8",
    "vit_base_patch16_224": "vit_b_16", "vit_base_patch16_384": "vit_b_16",
    "vit_base_patch32_224": "vit_b_32", "vit_base_patch32_384": "vit_b_32",
    "vit_large_patch16_224": "vit_l_16", "vit_large_patch16_384": "vit_l_16",
    "vit_large_patch32_224": "vit_l_32", "vit_large_patch32_384": "vit_l_32",
    "vit_huge_patch14_224": "vit_h_14",
}
# The 384 px weight sets our manifest lists (the others have no known hash): a bare "_384" alias selects its
# set. "_384" names without one are not registered, since they would silently give 224 px weights.
TIMM_384_TAGS: dict[str, str] = {"vit_large_patch32_384": "orig_in21k_ft_in1k_384"}

FIRST_CONV = "backbone.patch_embed.proj"
CLASSIFIER = "classifier.fc"
CONVERTERS = {
    "torchvision.vit": "mhub_vit.convert:from_torchvision",
    "timm.vit": "mhub_vit.convert:from_timm",
}


def name_for(size: str, patch_size: int) -> str:
    """The registry name of a size and patch size (``("base", 16)`` -> ``vit_b_16``), registered or not."""
    return f"vit_{LETTERS[size]}_{patch_size}"


def aliases_of(name: str) -> dict[str, str | None]:
    """timm's names for ``name`` and the tag each selects (``None``: our default weights)."""
    return {timm: TIMM_384_TAGS.get(timm) for timm, ours in TIMM_NAMES.items()
            if ours == name and (not timm.endswith("_384") or timm in TIMM_384_TAGS)}
