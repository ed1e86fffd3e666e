"""ConvNeXt and ConvMixer as data (torch-free: ``plugin.py`` lists them without building anything).

Names follow torchvision (``convnext_tiny`` ... ``convnext_large``) and timm (the smaller and larger ConvNeXts,
ConvMixer). Parameter counts are torchvision's published ``num_params`` where torchvision has the model, else
the count of timm's model of the same name (the tests check both against the libraries).
"""

from __future__ import annotations

CONVNEXT_PAPER = "Liu et al., A ConvNet for the 2020s, CVPR 2022 (arXiv:2201.03545)"
CONVMIXER_PAPER = "Trockman & Kolter, Patches Are All You Need?, TMLR 2023 (arXiv:2201.09792)"

# size: (blocks per stage, channels per stage); timm's atto ... nano are its own smaller ConvNeXts
CONVNEXT_SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
# name: (size, parameters at 1000 classes, upstream that has it)
CONVNEXT: dict[str, tuple[str, int, str]] = {
    "convnext_atto": ("atto", 3695520, "timm"),
    "convnext_femto": ("femto", 5217784, "timm"),
    "convnext_pico": ("pico", 9045672, "timm"),
    "convnext_nano": ("nano", 15593560, "timm"),
    "convnext_tiny": ("tiny", 28589128, "torchvision"),
    "convnext_small": ("small", 50223688, "torchvision"),
    "convnext_base": ("base", 88591464, "torchvision"),
    "convnext_large": ("large", 197767336, "torchvision"),
    "convnext_xlarge": ("xlarge", 350196968, "timm"),
}
# name: (dim, depth, kernel_size, patch_size, activation, parameters at 1000 classes); all timm's
CONVMIXER: dict[str, tuple[int, int, int, int, str, int]] = {
    "convmixer_768_32": (768, 32, 7, 7, "relu", 21110248),
    "convmixer_1024_20_ks9_p14": (1024, 20, 9, 14, "gelu", 24383464),
    "convmixer_1536_20": (1536, 20, 9, 7, "gelu", 51625960),
}

FIRST_CONV = "backbone.stem.conv"  # ConvNeXt's and ConvMixer's alike
CLASSIFIER = "classifier.fc"
CONVERTERS = {
    "torchvision.convnext": "mhub_convnext.convert:convnext_from_torchvision",
    "timm.convnext": "mhub_convnext.convert:convnext_from_timm",
    "timm.convmixer": "mhub_convnext.convert:convmixer_from_timm",
}


def convmixer_defaults(name: str) -> dict:
    """The :func:`~mhub_convnext.model.convmixer` arguments of a registered ConvMixer."""
    dim, depth, kernel_size, patch_size, act, _ = CONVMIXER[name]
    return dict(dim=dim, depth=depth, kernel_size=kernel_size, patch_size=patch_size, act=act)
