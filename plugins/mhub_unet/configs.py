"""The registered UNets as data (torch-free: ``plugin.py`` lists them without building anything).

Each ``unet_<backbone>`` is the UNet of segmentation_models_pytorch (smp 0.6, ``smp.Unet``) on the encoder smp
names in the table, so that smp's checkpoints convert (``mhub convert --from smp``) and compute the same masks.
The encoder's skip connections are the backbone's feature levels (timm's ``features_only`` levels, which
``mhub.features`` gives) at strides 2, 4, 8, 16 and 32, except where smp's own encoder taps another module
(facts from smp's encoder tables, ``out_indexes`` / ``stage_idxs`` / ``out_channels``):

- EfficientNet (``timm-efficientnet-b*``; ``efficientnet-b0``, lukemelas' port): the stem at stride 2, not the
  first stage; smp's ``efficientnet-b0`` taps the *first* block of the stride-16 stage (block 8) where every
  other variant taps the last;
- MobileNetV2 (``mobilenet_v2``): the final 1x1 convolution (1280 channels) at stride 32, not the last block.

``UNet(backbone=...)`` on a backbone of this table taps what smp's encoder taps; on any other backbone, its
feature levels (what smp's ``tu-`` encoders do).

Backbones whose levels start at stride 4 (ConvNeXt) have no stride-2 skip; those with a stride-1 level (VGG)
skip it, as smp's ``tu-`` encoders do.
"""

from __future__ import annotations

PAPER = "Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015 " \
        "(arXiv:1505.04597)"
CLASSIFIER = "classifier.conv"
DECODER_CHANNELS = (256, 128, 64, 32, 16)  # smp's default

# first convolution of each backbone family, inside the UNet's encoder
_FIRST_CONV = {"resnet": "backbone.stem.0.conv", "mobilenet": "backbone.stem.conv", "convnext": "backbone.stem.conv"}

# unet name -> (backbone, smp encoder name, backbone family, {stride: (module, channels)} replacing the
# backbone's feature level at that stride)
UNETS: dict[str, tuple[str, str, str, dict[int, tuple[str, int]]]] = {
    "unet_resnet18": ("resnet18", "resnet18", "resnet", {}),
    "unet_resnet34": ("resnet34", "resnet34", "resnet", {}),
    "unet_resnet50": ("resnet50", "resnet50", "resnet", {}),
    **{f"unet_efficientnet_b{i}": (f"efficientnet_b{i}", f"timm-efficientnet-b{i}", "mobilenet",
                                   {2: ("backbone.stem", stem)}) for i, stem in enumerate((32, 32, 32, 40, 48))},
    # lukemelas' efficientnet-b0 pads like TensorFlow (SAME); b1 ... b7 pad for their own training sizes (SAME at
    # even sizes, symmetric at odd ones), which no mhub EfficientNet reproduces: smp's timm-efficientnet-b* instead
    "unet_tf_efficientnet_b0": ("tf_efficientnet_b0", "efficientnet-b0", "mobilenet",
                                {2: ("backbone.stem", 32), 16: ("backbone.blocks.8", 112)}),
    "unet_mobilenet_v2": ("mobilenet_v2", "mobilenet_v2", "mobilenet", {32: ("backbone.head", 1280)}),
    "unet_convnext_tiny": ("convnext_tiny", "tu-convnext_tiny", "convnext", {}),
}

CONVERTERS = {"smp.unet": "mhub_unet.convert:from_smp"}


def first_conv(name: str) -> str:
    """State-dict prefix of the first convolution of the registered UNet ``name``."""
    return "backbone.encoder." + _FIRST_CONV[UNETS[name][2]]


def by_backbone(backbone: str) -> dict[int, tuple[str, int]]:
    """The smp level replacements for ``backbone`` (empty when smp taps the backbone's own levels)."""
    return next((row[3] for row in UNETS.values() if row[0] == backbone), {})
