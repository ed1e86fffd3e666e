"""The Inception family's architectures as data (torch-free: ``plugin.py`` lists them without building).

Bodies are tables with one tuple of rows per stage, built through :class:`mhub.builders.BlockBuilder`:

- Inception rows are ``(block, out_chs, stride, options)``: ``block`` names a function of
  :data:`mhub_inception.blocks.INCEPTION_BLOCKS`, called as ``block(in_chs, conv=..., **options)``;
  ``out_chs`` and ``stride`` are what it must produce (checked when built), so a table shows the architecture.
- Xception rows are ``(widths, stride, options)``: ``widths`` are the output channels of the block's
  separable convolutions (the last is the block's), ``options`` go to the block function.

BatchNorm constants follow the upstream each weight set comes from (``eps``, ``momentum`` in every
``ARCHS`` row): TensorFlow's epsilon 1e-3, as Metalhead 0.8 uses for the family, everywhere the upstream
PyTorch port kept it, and PyTorch's own 1e-5 where it did not (Cadene's legacy Xception; timm's
``xception41p``). Every upstream port trains with PyTorch's momentum 0.1, not TensorFlow's decay 0.997
(``basic_conv_bn``'s 3e-3), so that is the default too; it only matters when fine-tuning, and
``momentum=3e-3`` gives TensorFlow's behaviour.
"""

from __future__ import annotations

V3_PAPER = "Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016 (arXiv:1512.00567)"
V4_PAPER = ("Szegedy et al., Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning, "
            "AAAI 2017 (arXiv:1602.07261)")
XCEPTION_PAPER = ("Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017 "
                  "(arXiv:1610.02357)")
ALIGNED_PAPER = ("Chen et al., Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation "
                 "(DeepLabv3+, aligned Xception), ECCV 2018 (arXiv:1802.02611)")

# -- Inception bodies: (block, out_chs, stride, options) --------------------------------------------
# Inception v3 (torchvision Mixed_5b..Mixed_7c): grids 35x35, 17x17 and 8x8 at 299 px.
INCEPTION_V3 = (
    (("inception_5x5", 256, 1, dict(pool_chs=32)),
     ("inception_5x5", 288, 1, dict(pool_chs=64)),
     ("inception_5x5", 288, 1, dict(pool_chs=64))),
    (("reduction_a", 768, 2, dict(k=64, l=96, m=96, n=384)),
     *(("inception_7x7", 768, 1, dict(widths=(192, (c, c, 192), (c, c, c, c, 192), 192)))
       for c in (128, 160, 160, 192))),
    (("reduction_b", 1280, 2, dict(widths=((192, 320), (192, 192, 192, 192)))),
     ("inception_v3_e", 2048, 1, {}),
     ("inception_v3_e", 2048, 1, {})),
)

# Inception-v4 (paper Figures 4-8; timm inception_v4 features.6..21): 4 x A, Reduction-A, 7 x B, Reduction-B, 3 x C.
_V4_B = dict(widths=(384, (192, 224, 256), (192, 192, 224, 224, 256), 128), count_include_pad=False)
INCEPTION_V4 = (
    (("inception_3x3", 384, 1, {}),) * 4,
    (("reduction_a", 1024, 2, dict(k=192, l=224, m=256, n=384)), *(("inception_7x7", 1024, 1, _V4_B),) * 7),
    (("reduction_b", 1536, 2, dict(widths=((192, 192), (256, 256, 320, 320)))),
     *(("inception_v4_c", 1536, 1, {}),) * 3),
)

# Inception-ResNet-v2 (paper Figures 16-19, Table 1; timm inception_resnet_v2 = TF-slim's layout): the stem's
# 35x35 module, 10 x A (scale 0.17), Reduction-A, 20 x B (0.10), Reduction-B, 9 x C (0.20) and a last C with
# scale 1 and no activation.
INCEPTION_RESNET_V2 = (
    (("inception_5x5", 320, 1, dict(branch0_chs=96, pool_chs=64, count_include_pad=False)),
     *(("inception_resnet_a", 320, 1, dict(scale=0.17)),) * 10),
    (("reduction_a", 1088, 2, dict(k=256, l=256, m=384, n=384)),
     *(("inception_resnet_b", 1088, 1, dict(scale=0.10)),) * 20),
    (("reduction_resnet_b", 2080, 2, {}),
     *(("inception_resnet_c", 2080, 1, dict(scale=0.20)),) * 9,
     ("inception_resnet_c", 2080, 1, dict(scale=1.0, act=False))),
)

INCEPTION_TABLES = {"inception_v3": INCEPTION_V3, "inception_v4": INCEPTION_V4,
                    "inception_resnet_v2": INCEPTION_RESNET_V2}

# -- Xception bodies: (widths, stride, options), stages = entry, middle and exit flows ----------------
# Chollet's Xception (Figure 5; Cadene's port, timm legacy_xception): strided blocks end in a 3x3/2 max-pool; the
# exit flow ends with two separable convolutions (1536, 2048) without a shortcut, each followed by its activation.
XCEPTION = (
    (((128, 128), 2, dict(first_act=False)), ((256, 256), 2, {}), ((728, 728), 2, {})),
    (((728, 728, 728), 1, {}),) * 8,
    (((728, 1024), 2, {}), ((1536, 2048), 1, dict(skip=False, inner_act=True))),
)


def _aligned(entry: tuple, middle: int, preact: bool = False) -> tuple:
    # The last exit block has no shortcut; without pre-activation its activations follow every norm instead.
    last = dict(skip=False) if preact else dict(skip=False, inner_act=True)
    return (entry, (((728, 728, 728), 1, {}),) * middle,
            (((728, 1024, 1024), 2, {}), ((1536, 1536, 2048), 1, last)))


_ENTRY = (((128,) * 3, 2, {}), ((256,) * 3, 2, {}), ((728,) * 3, 2, {}))
_ENTRY_71 = (((128,) * 3, 2, {}), ((256,) * 3, 1, {}), ((256,) * 3, 2, {}), ((728,) * 3, 1, {}), ((728,) * 3, 2, {}))
# Aligned Xception (DeepLab's modified Xception; timm xception_aligned.py), by config name.
XCEPTION_ALIGNED = {
    "41": _aligned(_ENTRY, 8), "65": _aligned(_ENTRY, 16), "71": _aligned(_ENTRY_71, 16),
    "41p": _aligned(_ENTRY, 8, preact=True), "65p": _aligned(_ENTRY, 16, preact=True),
}

# -- registered architectures ------------------------------------------------------------------------
_TF_BN = dict(eps=1e-3, momentum=0.1)  # TensorFlow's epsilon; PyTorch momentum, as the upstream ports train
_TORCH_BN = dict(eps=1e-5, momentum=0.1)

# name: (builder function in mhub_inception.model, defaults, paper, upstream implementation, num_params)
# num_params is the default build's count where torchvision publishes one: for inception_v3 that is
# torchvision's 27,161,264 less the auxiliary classifier (3,326,696 parameters), which our default build leaves out.
ARCHS: dict[str, tuple[str, dict, str, str, int | None]] = {
    "inception_v3": ("inception_v3", _TF_BN, V3_PAPER, "torchvision inception_v3 (timm's has the same layout)",
                     23834568),
    "inception_v4": ("inception_v4", _TF_BN, V4_PAPER, "timm inception_v4", None),
    "inception_resnet_v2": ("inception_resnet_v2", _TF_BN, V4_PAPER, "timm inception_resnet_v2", None),
    "xception": ("xception", _TORCH_BN, XCEPTION_PAPER, "timm legacy_xception, Cadene's port", None),
    "xception41": ("xception_aligned", dict(config="41", **_TF_BN), ALIGNED_PAPER, "timm xception41", None),
    "xception65": ("xception_aligned", dict(config="65", **_TF_BN), ALIGNED_PAPER, "timm xception65", None),
    "xception71": ("xception_aligned", dict(config="71", **_TF_BN), ALIGNED_PAPER, "timm xception71", None),
    # timm builds xception41p with PyTorch's BatchNorm defaults, xception65p with TensorFlow's epsilon
    "xception41p": ("xception_aligned", dict(config="41p", **_TORCH_BN), ALIGNED_PAPER, "timm xception41p", None),
    "xception65p": ("xception_aligned", dict(config="65p", **_TF_BN), ALIGNED_PAPER, "timm xception65p", None),
}

FIRST_CONV = {"inception": "backbone.stem.conv1a.conv", "xception": "backbone.stem.conv1.conv"}
CLASSIFIER = "classifier.fc"
# Auxiliary classifiers a model built with aux_logits=True has. torchvision's weights hold a trained one (the
# converters map it); loading drops it into a model built without, and initialises it fresh from weights without.
AUX_CLASSIFIERS = {"inception_v3": ("aux",)}
# name -> (function, version); version 2 of the Inception v3 maps keeps torchvision's auxiliary classifier
CONVERTERS = {
    "torchvision.inception": ("mhub_inception.convert:from_torchvision", 2),
    "timm.inception": ("mhub_inception.convert:from_timm", 2),
    "timm_background.inception": ("mhub_inception.convert:from_timm_with_background", 1),
}


def first_conv(name: str) -> str:
    """State-dict prefix of the first convolution of architecture ``name``."""
    return FIRST_CONV["xception" if name.startswith("xception") else "inception"]
