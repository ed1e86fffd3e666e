"""The ResNet family's architectures as data (torch-free: ``plugin.py`` lists them without building).

Each config holds the keyword arguments of :func:`mhub_resnet.model.resnet`, with layer choices given by
name (``block``: ``basic`` | ``bottleneck`` | ``res2``; ``attn_layer``: ``se`` | ``se_exact`` | ``ese``;
``aa_layer``: ``avg``). The published parameter counts are torchvision's (``ResNet*_Weights.meta``); timm
publishes none, so its variants are checked against timm's own models in the tests.
"""

from __future__ import annotations

TV_PAPER = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (arXiv:1512.03385)"
RESNEXT_PAPER = "Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017 (arXiv:1611.05431)"
WIDE_PAPER = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016 (arXiv:1605.07146)"
SE_PAPER = "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018 (arXiv:1709.01507)"
RES2_PAPER = "Gao et al., Res2Net: A New Multi-scale Backbone Architecture, TPAMI 2021 (arXiv:1904.01169)"
TRICKS_PAPER = "He et al., Bag of Tricks for Image Classification with CNNs, CVPR 2019 (arXiv:1812.01187)"

# Blocks per stage of each depth, for basic (18, 34) and bottleneck (the rest) blocks.
DEPTHS = {
    18: (2, 2, 2, 2), 26: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
    152: (3, 8, 36, 3), 200: (3, 24, 36, 3), 201: (3, 24, 36, 4),
}

_D = dict(stem_type="deep", stem_width=32, downsample="avg")  # timm's "d" variants (Bag of Tricks ResNet-D)
_SE = dict(attn_layer="se")
# Caffe SENet as ported by Cadene/timm senet.py: stride in the first 1x1 conv of bottlenecks, SE width
# exactly channels/16, 3x3/2 stem max-pool without padding (ceil mode), dropout 0.2 before the classifier.
_LEGACY = dict(attn_layer="se_exact", stem_pool="max_ceil", dropout=0.2)


def _bottleneck(depth: int, **options) -> dict:
    return dict(block="bottleneck", layers=DEPTHS[depth], **options)


def _basic(depth: int, **options) -> dict:
    return dict(block="basic", layers=DEPTHS[depth], **options)


def _res2(depth: int, base_width: int, scale: int, **options) -> dict:
    return dict(block="res2", layers=DEPTHS[depth], base_width=base_width, scale=scale, **options)


# name: (config, paper, upstream, torchvision num_params or None)
MODELS: dict[str, tuple[dict, str, str, int | None]] = {
    # torchvision/models/resnet.py
    "resnet18": (_basic(18), TV_PAPER, "torchvision", 11689512),
    "resnet34": (_basic(34), TV_PAPER, "torchvision", 21797672),
    "resnet50": (_bottleneck(50), TV_PAPER, "torchvision", 25557032),
    "resnet101": (_bottleneck(101), TV_PAPER, "torchvision", 44549160),
    "resnet152": (_bottleneck(152), TV_PAPER, "torchvision", 60192808),
    "resnext50_32x4d": (_bottleneck(50, cardinality=32, base_width=4), RESNEXT_PAPER, "torchvision", 25028904),
    "resnext101_32x8d": (_bottleneck(101, cardinality=32, base_width=8), RESNEXT_PAPER, "torchvision", 88791336),
    "resnext101_64x4d": (_bottleneck(101, cardinality=64, base_width=4), RESNEXT_PAPER, "torchvision", 83455272),
    "wide_resnet50_2": (_bottleneck(50, base_width=128), WIDE_PAPER, "torchvision", 68883240),
    "wide_resnet101_2": (_bottleneck(101, base_width=128), WIDE_PAPER, "torchvision", 126886696),
    # timm/models/resnet.py (SE variants)
    "seresnet18": (_basic(18, **_SE), SE_PAPER, "timm", None),
    "seresnet34": (_basic(34, **_SE), SE_PAPER, "timm", None),
    "seresnet50": (_bottleneck(50, **_SE), SE_PAPER, "timm", None),
    "seresnet101": (_bottleneck(101, **_SE), SE_PAPER, "timm", None),
    "seresnet152": (_bottleneck(152, **_SE), SE_PAPER, "timm", None),
    "seresnet152d": (_bottleneck(152, **_D, **_SE), SE_PAPER, "timm", None),
    "seresnext26d_32x4d": (_bottleneck(26, cardinality=32, base_width=4, **_D, **_SE), SE_PAPER, "timm", None),
    "seresnext26t_32x4d": (_bottleneck(26, cardinality=32, base_width=4, **{**_D, "stem_type": "deep_tiered"}, **_SE),
                           SE_PAPER, "timm", None),
    "seresnext50_32x4d": (_bottleneck(50, cardinality=32, base_width=4, **_SE), SE_PAPER, "timm", None),
    "seresnext101_32x4d": (_bottleneck(101, cardinality=32, base_width=4, **_SE), SE_PAPER, "timm", None),
    "seresnext101_32x8d": (_bottleneck(101, cardinality=32, base_width=8, **_SE), SE_PAPER, "timm", None),
    "seresnext101d_32x8d": (_bottleneck(101, cardinality=32, base_width=8, **_D, **_SE), SE_PAPER, "timm", None),
    "seresnext101_64x4d": (_bottleneck(101, cardinality=64, base_width=4, **_SE), SE_PAPER, "timm", None),
    # "aa": 2x2 average-pool anti-aliasing after strided 3x3 convs and in place of the stem max-pool.
    "seresnextaa101d_32x8d": (_bottleneck(101, cardinality=32, base_width=8, aa_layer="avg", **_D, **_SE),
                              SE_PAPER, "timm", None),
    "seresnextaa201d_32x8d": (_bottleneck(201, cardinality=32, base_width=8, aa_layer="avg",
                                          **{**_D, "stem_width": 64}, **_SE), SE_PAPER, "timm", None),
    # timm/models/senet.py (legacy SENet layout)
    "legacy_seresnet18": (_basic(18, attn_after_act=True, **_LEGACY), SE_PAPER, "timm-legacy", None),
    "legacy_seresnet34": (_basic(34, attn_after_act=True, **_LEGACY), SE_PAPER, "timm-legacy", None),
    "legacy_seresnet50": (_bottleneck(50, stride_in_1x1=True, **_LEGACY), SE_PAPER, "timm-legacy", None),
    "legacy_seresnet101": (_bottleneck(101, stride_in_1x1=True, **_LEGACY), SE_PAPER, "timm-legacy", None),
    "legacy_seresnet152": (_bottleneck(152, stride_in_1x1=True, **_LEGACY), SE_PAPER, "timm-legacy", None),
    "legacy_seresnext26_32x4d": (_bottleneck(26, cardinality=32, base_width=4, **_LEGACY), SE_PAPER,
                                 "timm-legacy", None),
    "legacy_seresnext50_32x4d": (_bottleneck(50, cardinality=32, base_width=4, **_LEGACY), SE_PAPER,
                                 "timm-legacy", None),
    "legacy_seresnext101_32x4d": (_bottleneck(101, cardinality=32, base_width=4, **_LEGACY), SE_PAPER,
                                  "timm-legacy", None),
    # timm/models/res2net.py
    "res2net50_26w_4s": (_res2(50, 26, 4), RES2_PAPER, "timm", None),
    "res2net101_26w_4s": (_res2(101, 26, 4), RES2_PAPER, "timm", None),
    "res2net50_26w_6s": (_res2(50, 26, 6), RES2_PAPER, "timm", None),
    "res2net50_26w_8s": (_res2(50, 26, 8), RES2_PAPER, "timm", None),
    "res2net50_48w_2s": (_res2(50, 48, 2), RES2_PAPER, "timm", None),
    "res2net50_14w_8s": (_res2(50, 14, 8), RES2_PAPER, "timm", None),
    "res2next50": (_res2(50, 4, 4, cardinality=8), RES2_PAPER, "timm", None),
    "res2net50d": (_res2(50, 26, 4, **_D), RES2_PAPER, "timm", None),
    "res2net101d": (_res2(101, 26, 4, **_D), RES2_PAPER, "timm", None),
}

FIRST_CONV = "backbone.stem.0.conv"
CLASSIFIER = "classifier.fc"
CONVERTERS = {
    "torchvision.resnet": "mhub_resnet.convert:from_torchvision",
    "timm.resnet": "mhub_resnet.convert:from_timm",
    "timm.legacy_senet": "mhub_resnet.convert:from_timm_legacy_senet",
}


def config(name: str) -> dict:
    """A copy of the named architecture's :func:`~mhub_resnet.model.resnet` arguments.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    try:
        return dict(MODELS[name][0])
    except KeyError:
        raise KeyError(f"unknown ResNet config {name!r}; known: {', '.join(sorted(MODELS))}") from None
