"""The classic CNNs as data (torch-free: ``plugin.py`` lists them without building anything).

Layer counts, widths, kernel sizes and pooling choices are facts from the papers and from torchvision 0.29's
``alexnet.py``, ``vgg.py``, ``squeezenet.py``, ``densenet.py`` and ``googlenet.py`` (whose checkpoints the
registry serves); no upstream code is copied. Published parameter counts are torchvision's
(``*_Weights.meta["num_params"]``).
"""

from __future__ import annotations

from typing import Any

from mhub import ConfigError  # noqa: F401 - the family's configuration error, as mhub_classic.configs.ConfigError


ALEXNET_PAPER = ("Krizhevsky, One weird trick for parallelizing convolutional neural networks, 2014 "
                 "(arXiv:1404.5997); after Krizhevsky et al., NeurIPS 2012")
VGG_PAPER = "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015 " \
            "(arXiv:1409.1556)"
SQUEEZENET_PAPER = "Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model " \
                   "size, 2016 (arXiv:1602.07360)"
DENSENET_PAPER = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017 (arXiv:1608.06993)"
GOOGLENET_PAPER = "Szegedy et al., Going Deeper with Convolutions, CVPR 2015 (arXiv:1409.4842)"

# -- VGG ---------------------------------------------------------------------------------------------------
# Per stage: (output channels, 3x3 convolutions); every stage ends with a 2x2/2 max pool.
VGG_CONFIGS: dict[int, tuple[tuple[int, int], ...]] = {
    11: ((64, 1), (128, 1), (256, 2), (512, 2), (512, 2)),  # "A"
    13: ((64, 2), (128, 2), (256, 2), (512, 2), (512, 2)),  # "B"
    16: ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),  # "D"
    19: ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)),  # "E"
}

# -- SqueezeNet --------------------------------------------------------------------------------------------
# stem: (channels, kernel) of the stride-2 first convolution (no padding);
# layers: "M" (3x3/2 max pool, ceil mode) or a fire module (squeeze, expand): a 1x1 squeeze to `squeeze`
# channels, then `expand` 1x1 and `expand` 3x3 channels concatenated.
SQUEEZENET_CONFIGS: dict[str, dict[str, Any]] = {
    "1_0": {"stem": (96, 7), "layers": ("M", (16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192),
                                        (64, 256), "M", (64, 256))},
    "1_1": {"stem": (64, 3), "layers": ("M", (16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192),
                                        (48, 192), (64, 256), (64, 256))},
}

# -- DenseNet ----------------------------------------------------------------------------------------------
# (growth rate k, dense layers per block, stem channels); DenseNet-BC: 4k-wide bottlenecks, compression 0.5.
DENSENET_CONFIGS: dict[int, tuple[int, tuple[int, ...], int]] = {
    121: (32, (6, 12, 24, 16), 64),
    161: (48, (6, 12, 36, 24), 96),
    169: (32, (6, 12, 32, 32), 64),
    201: (32, (6, 12, 48, 32), 64),
}

# -- GoogLeNet ---------------------------------------------------------------------------------------------
# After the stem (7x7/2 conv 64, 3x3/2 max pool, 1x1 conv 64, 3x3 conv 192, 3x3/2 max pool), in order:
# an Inception module (name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) or a max pool (name, kernel),
# stride 2, ceil mode. torchvision's weights were trained with a 3x3 convolution in the "5x5" branch and a 2x2
# max pool before inception5a; both are kept so that they compute what they were trained to.
GOOGLENET_LAYERS: tuple[tuple, ...] = (
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    ("pool3", 3),
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("pool4", 2),
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
)
# Auxiliary classifiers tap the output of these modules (training only).
GOOGLENET_AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}

# -- registered architectures ------------------------------------------------------------------------------
def _densenet(depth: int) -> dict[str, Any]:
    growth_rate, block_config, num_init_features = DENSENET_CONFIGS[depth]
    return {"growth_rate": growth_rate, "block_config": block_config, "num_init_features": num_init_features}


# name -> (mid-level builder in mhub_classic.model, its arguments, paper, first conv prefix, torchvision
# num_params). Every model's head is "classifier.fc".
_VGG_FIRST = "backbone.stages.0.0.conv"
ARCHS: dict[str, tuple[str, dict[str, Any], str, str, int]] = {
    "alexnet": ("alexnet", {}, ALEXNET_PAPER, "backbone.conv1.conv", 61100840),
    "vgg11": ("vgg", {"config": 11}, VGG_PAPER, _VGG_FIRST, 132863336),
    "vgg11_bn": ("vgg", {"config": 11, "batchnorm": True}, VGG_PAPER, _VGG_FIRST, 132868840),
    "vgg13": ("vgg", {"config": 13}, VGG_PAPER, _VGG_FIRST, 133047848),
    "vgg13_bn": ("vgg", {"config": 13, "batchnorm": True}, VGG_PAPER, _VGG_FIRST, 133053736),
    "vgg16": ("vgg", {"config": 16}, VGG_PAPER, _VGG_FIRST, 138357544),
    "vgg16_bn": ("vgg", {"config": 16, "batchnorm": True}, VGG_PAPER, _VGG_FIRST, 138365992),
    "vgg19": ("vgg", {"config": 19}, VGG_PAPER, _VGG_FIRST, 143667240),
    "vgg19_bn": ("vgg", {"config": 19, "batchnorm": True}, VGG_PAPER, _VGG_FIRST, 143678248),
    "squeezenet1_0": ("squeezenet", {"version": "1_0"}, SQUEEZENET_PAPER, "backbone.conv1.conv", 1248424),
    "squeezenet1_1": ("squeezenet", {"version": "1_1"}, SQUEEZENET_PAPER, "backbone.conv1.conv", 1235496),
    "densenet121": ("densenet", _densenet(121), DENSENET_PAPER, "backbone.stem.conv", 7978856),
    "densenet161": ("densenet", _densenet(161), DENSENET_PAPER, "backbone.stem.conv", 28681000),
    "densenet169": ("densenet", _densenet(169), DENSENET_PAPER, "backbone.stem.conv", 14149480),
    "densenet201": ("densenet", _densenet(201), DENSENET_PAPER, "backbone.stem.conv", 20013928),
    "googlenet": ("googlenet", {}, GOOGLENET_PAPER, "backbone.conv1.conv", 6624904),
}
CLASSIFIER = "classifier.fc"
# Auxiliary classifiers a model built with aux_logits=True has; torchvision's GoogLeNet weights hold untrained
# ones, which the converter leaves out, so pretrained loading initialises them fresh.
AUX_CLASSIFIERS = {"googlenet": tuple(GOOGLENET_AUX_TAPS.values())}

CONVERTERS = {
    "torchvision.classic": "mhub_classic.convert:from_torchvision",
    "timm.classic": "mhub_classic.convert:from_timm",
    # torchvision weights whose classifier upstream declares unusable (vgg16 IMAGENET1K_FEATURES)
    "torchvision.classic_features": "mhub_classic.convert:features_from_torchvision",
}

