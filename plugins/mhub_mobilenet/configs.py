"""Configuration tables of the inverted-residual families (torch-free: ``mhub list`` reads them).

One function, :func:`mhub_mobilenet.model.irnet`, builds every network here from a :class:`NetConfig` and
two multipliers. The tables are facts taken from the papers and from torchvision / timm (layer orders, widths,
repeats, normalisation constants); no upstream code is copied.

Row legend, used by every table below::

    (block, k, e, c, n, s, se, act)
    block: "dwsep" | "mbconv" | "fused" | "conv"   (see mhub.layers.mbconv; "conv" = fused without expansion)
    k: kernel size   e: expansion ratio (mid = make_divisible(in * e))   c: output channels (before width scaling)
    n: repeats (before depth scaling)   s: stride of the first block   se: squeeze-excite ratio, 0 for none
    act: activation name, None for the config's default
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from typing import Any

from mhub import ConfigError

Row = tuple[str, int, float, int, int, int, float, "str | None"]

# block names a row may use; mhub_mobilenet.model.register_block adds to it
BLOCK_TYPES = {"dwsep", "mbconv", "fused", "conv"}
ACTIVATIONS = ("relu", "relu6", "hswish", "silu", "sigmoid", "hsigmoid")
TF_BN = {"eps": 1e-3, "momentum": 0.01}  # TensorFlow BatchNorm: epsilon 1e-3, decay 0.99


@dataclass(frozen=True)
class NetConfig:
    """Everything :func:`~mhub_mobilenet.model.irnet` needs besides the two multipliers.

    Attributes:
        rows: the block table (see the module legend).
        stem: stem channels (3x3, stride 2), scaled by the width multiplier unless ``fix_stem``.
        act: default activation (stem, blocks, head, hidden layer).
        head: channels of the final 1x1 conv; 0 for none (MobileNetV1).
        head_rule: ``"width"`` scales ``head`` with the width multiplier, ``"fixed"`` keeps it,
            ``"width_min"`` scales it up but never down (MobileNetV2).
        hidden: width of a hidden linear layer in the classifier (MobileNetV3), 0 for none.
        head_feature: the final 1x1 conv ends the last feature level, as in timm's MobileNetV3 (whose last
            block it is); otherwise the last block does (timm's EfficientNet, where it is ``conv_head``).
        fix_stem: keep the stem width whatever the multiplier.
        fix_first_row: keep the first row's width too (torchvision's version-1 MNASNet checkpoints).
        fix_first_last: do not depth-scale the first and last rows (EfficientNet-Lite).
        se_gate / se_act: squeeze-excite gate and inner activation (``None``: the block's activation).
        se_from_mid: squeeze-excite width from the expanded channels (MobileNetV3) instead of the block input.
        se_divisor: round the squeeze-excite width to this multiple (8 in MobileNetV3; 1 truncates).
        round_limit: ``make_divisible`` limit for width scaling (0 in EfficientNetV2-B*).
        eps / momentum: BatchNorm constants (PyTorch momentum convention).
        padding: ``None`` for symmetric padding, ``"same"`` for TensorFlow ``SAME`` (``tf_*`` ports).
        dropout: classifier dropout.
        drop_path_rate: stochastic depth reached by the last block (linear in the global block index).
        paper: the paper that defines the family.
    """

    rows: tuple[Row, ...]
    stem: int
    act: str
    head: int = 1280
    head_rule: str = "width"
    hidden: int = 0
    head_feature: bool = False
    fix_stem: bool = False
    fix_first_row: bool = False
    fix_first_last: bool = False
    se_gate: str = "sigmoid"
    se_act: str | None = None
    se_from_mid: bool = False
    se_divisor: int = 1
    round_limit: float = 0.9
    eps: float = 1e-5
    momentum: float = 0.1
    padding: str | None = None
    dropout: float = 0.2
    drop_path_rate: float = 0.0
    paper: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            block, k, e, c, n, s, se, act = row
            if block not in BLOCK_TYPES or act not in (None, *ACTIVATIONS) or n < 1 or s not in (1, 2):
                raise ValueError(f"bad config row {row}: see the legend in {__name__} (blocks: "
                                 f"{', '.join(sorted(BLOCK_TYPES))}; activations: {', '.join(ACTIVATIONS)})")
        if self.head_rule not in ("width", "fixed", "width_min"):
            raise ValueError(f"head_rule {self.head_rule!r}: expected width, fixed or width_min")


def _no_se(rows) -> tuple[Row, ...]:
    """The same table without squeeze-excite (EfficientNet-Lite)."""
    return tuple((b, k, e, c, n, s, 0, act) for b, k, e, c, n, s, _, act in rows)


def _minimal(rows) -> tuple[Row, ...]:
    """MobileNetV3-minimal: 3x3 kernels, ReLU, no squeeze-excite."""
    return tuple((b, 3, e, c, n, s, 0, None) for b, _, e, c, n, s, _, _ in rows)


PAPERS = {
    "v1": "Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications, "
          "arXiv:1704.04861",
    "v2": "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, arXiv:1801.04381",
    "v3": "Howard et al., Searching for MobileNetV3, arXiv:1905.02244",
    "mnasnet": "Tan et al., MnasNet: Platform-Aware Neural Architecture Search for Mobile, arXiv:1807.11626",
    "efficientnet": "Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, arXiv:1905.11946",
    "lite": "Liu et al., Higher accuracy on vision models with EfficientNet-Lite, TensorFlow blog (2020)",
    "v2net": "Tan & Le, EfficientNetV2: Smaller Models and Faster Training, arXiv:2104.00298",
}

# (block, k, e, c, n, s, se, act)
MOBILENET_V1 = (
    ("dwsep", 3, 1, 64, 1, 1, 0, None),
    ("dwsep", 3, 1, 128, 2, 2, 0, None),
    ("dwsep", 3, 1, 256, 2, 2, 0, None),
    ("dwsep", 3, 1, 512, 6, 2, 0, None),
    ("dwsep", 3, 1, 1024, 2, 2, 0, None),
)
# (block, k, e, c, n, s, se, act)
MOBILENET_V2 = (
    ("mbconv", 3, 1, 16, 1, 1, 0, None),
    ("mbconv", 3, 6, 24, 2, 2, 0, None),
    ("mbconv", 3, 6, 32, 3, 2, 0, None),
    ("mbconv", 3, 6, 64, 4, 2, 0, None),
    ("mbconv", 3, 6, 96, 3, 1, 0, None),
    ("mbconv", 3, 6, 160, 3, 2, 0, None),
    ("mbconv", 3, 6, 320, 1, 1, 0, None),
)
# (block, k, e, c, n, s, se, act); expansions are torchvision's expanded widths over the input width
MOBILENET_V3_LARGE = (
    ("mbconv", 3, 1, 16, 1, 1, 0, "relu"),
    ("mbconv", 3, 4, 24, 1, 2, 0, "relu"),
    ("mbconv", 3, 3, 24, 1, 1, 0, "relu"),
    ("mbconv", 5, 3, 40, 3, 2, 0.25, "relu"),
    ("mbconv", 3, 6, 80, 1, 2, 0, None),
    ("mbconv", 3, 2.5, 80, 1, 1, 0, None),
    ("mbconv", 3, 2.3, 80, 2, 1, 0, None),
    ("mbconv", 3, 6, 112, 2, 1, 0.25, None),
    ("mbconv", 5, 6, 160, 3, 2, 0.25, None),
)
# (block, k, e, c, n, s, se, act)
MOBILENET_V3_SMALL = (
    ("mbconv", 3, 1, 16, 1, 2, 0.25, "relu"),
    ("mbconv", 3, 4.5, 24, 1, 2, 0, "relu"),
    ("mbconv", 3, 3.67, 24, 1, 1, 0, "relu"),
    ("mbconv", 5, 4, 40, 1, 2, 0.25, None),
    ("mbconv", 5, 6, 40, 2, 1, 0.25, None),
    ("mbconv", 5, 3, 48, 2, 1, 0.25, None),
    ("mbconv", 5, 6, 96, 3, 2, 0.25, None),
)
# (block, k, e, c, n, s, se, act); MNASNet-B1 (torchvision's MNASNet)
MNASNET_B1 = (
    ("mbconv", 3, 1, 16, 1, 1, 0, None),
    ("mbconv", 3, 3, 24, 3, 2, 0, None),
    ("mbconv", 5, 3, 40, 3, 2, 0, None),
    ("mbconv", 5, 6, 80, 3, 2, 0, None),
    ("mbconv", 3, 6, 96, 2, 1, 0, None),
    ("mbconv", 5, 6, 192, 4, 2, 0, None),
    ("mbconv", 3, 6, 320, 1, 1, 0, None),
)
# (block, k, e, c, n, s, se, act); MNASNet-A1 (timm's semnasnet)
MNASNET_A1 = (
    ("mbconv", 3, 1, 16, 1, 1, 0, None),
    ("mbconv", 3, 6, 24, 2, 2, 0, None),
    ("mbconv", 5, 3, 40, 3, 2, 0.25, None),
    ("mbconv", 3, 6, 80, 4, 2, 0, None),
    ("mbconv", 3, 6, 112, 2, 1, 0.25, None),
    ("mbconv", 5, 6, 160, 3, 2, 0.25, None),
    ("mbconv", 3, 6, 320, 1, 1, 0, None),
)
# (block, k, e, c, n, s, se, act); timm's mnasnet_small
MNASNET_SMALL = (
    ("mbconv", 3, 1, 8, 1, 1, 0, None),
    ("mbconv", 3, 3, 16, 1, 2, 0, None),
    ("mbconv", 3, 6, 16, 2, 2, 0, None),
    ("mbconv", 5, 6, 32, 4, 2, 0.25, None),
    ("mbconv", 3, 6, 32, 3, 1, 0.25, None),
    ("mbconv", 5, 6, 88, 3, 2, 0.25, None),
    ("mbconv", 3, 6, 144, 1, 1, 0, None),
)
# (block, k, e, c, n, s, se, act)
EFFICIENTNET = (
    ("mbconv", 3, 1, 16, 1, 1, 0.25, None),
    ("mbconv", 3, 6, 24, 2, 2, 0.25, None),
    ("mbconv", 5, 6, 40, 2, 2, 0.25, None),
    ("mbconv", 3, 6, 80, 3, 2, 0.25, None),
    ("mbconv", 5, 6, 112, 3, 1, 0.25, None),
    ("mbconv", 5, 6, 192, 4, 2, 0.25, None),
    ("mbconv", 3, 6, 320, 1, 1, 0.25, None),
)
# (block, k, e, c, n, s, se, act)
EFFICIENTNET_V2_S = (
    ("conv", 3, 1, 24, 2, 1, 0, None),
    ("fused", 3, 4, 48, 4, 2, 0, None),
    ("fused", 3, 4, 64, 4, 2, 0, None),
    ("mbconv", 3, 4, 128, 6, 2, 0.25, None),
    ("mbconv", 3, 6, 160, 9, 1, 0.25, None),
    ("mbconv", 3, 6, 256, 15, 2, 0.25, None),
)
# (block, k, e, c, n, s, se, act)
EFFICIENTNET_V2_M = (
    ("conv", 3, 1, 24, 3, 1, 0, None),
    ("fused", 3, 4, 48, 5, 2, 0, None),
    ("fused", 3, 4, 80, 5, 2, 0, None),
    ("mbconv", 3, 4, 160, 7, 2, 0.25, None),
    ("mbconv", 3, 6, 176, 14, 1, 0.25, None),
    ("mbconv", 3, 6, 304, 18, 2, 0.25, None),
    ("mbconv", 3, 6, 512, 5, 1, 0.25, None),
)
# (block, k, e, c, n, s, se, act)
EFFICIENTNET_V2_L = (
    ("conv", 3, 1, 32, 4, 1, 0, None),
    ("fused", 3, 4, 64, 7, 2, 0, None),
    ("fused", 3, 4, 96, 7, 2, 0, None),
    ("mbconv", 3, 4, 192, 10, 2, 0.25, None),
    ("mbconv", 3, 6, 224, 19, 1, 0.25, None),
    ("mbconv", 3, 6, 384, 25, 2, 0.25, None),
    ("mbconv", 3, 6, 640, 7, 1, 0.25, None),
)
# (block, k, e, c, n, s, se, act)
EFFICIENTNET_V2_XL = (
    ("conv", 3, 1, 32, 4, 1, 0, None),
    ("fused", 3, 4, 64, 8, 2, 0, None),
    ("fused", 3, 4, 96, 8, 2, 0, None),
    ("mbconv", 3, 4, 192, 16, 2, 0.25, None),
    ("mbconv", 3, 6, 256, 24, 1, 0.25, None),
    ("mbconv", 3, 6, 512, 32, 2, 0.25, None),
    ("mbconv", 3, 6, 640, 8, 1, 0.25, None),
)
# (block, k, e, c, n, s, se, act); EfficientNetV2-B0..B3
EFFICIENTNET_V2_BASE = (
    ("conv", 3, 1, 16, 1, 1, 0, None),
    ("fused", 3, 4, 32, 2, 2, 0, None),
    ("fused", 3, 4, 48, 2, 2, 0, None),
    ("mbconv", 3, 4, 96, 3, 2, 0.25, None),
    ("mbconv", 3, 6, 112, 5, 1, 0.25, None),
    ("mbconv", 3, 6, 192, 8, 2, 0.25, None),
)
# (block, k, e, c, n, s, se, act); timm's pre-release EfficientNetV2-S ("rw")
EFFICIENTNET_V2_RW = (
    ("fused", 3, 1, 24, 2, 1, 0, None),
    ("fused", 3, 4, 48, 4, 2, 0, None),
    ("fused", 3, 4, 64, 4, 2, 0, None),
    ("mbconv", 3, 4, 128, 6, 2, 0.25, None),
    ("mbconv", 3, 6, 160, 9, 1, 0.25, None),
    ("mbconv", 3, 6, 272, 15, 2, 0.25, None),
)

_V3 = dict(stem=16, act="hswish", se_gate="hsigmoid", se_act="relu", se_from_mid=True, se_divisor=8,
           head_feature=True, paper=PAPERS["v3"])
_V2NET = dict(act="silu", eps=1e-3, head_rule="fixed", drop_path_rate=0.2, paper=PAPERS["v2net"])

CONFIGS: dict[str, NetConfig] = {
    "mobilenet_v1": NetConfig(MOBILENET_V1, stem=32, act="relu6", head=0, paper=PAPERS["v1"]),
    "mobilenet_v2": NetConfig(MOBILENET_V2, stem=32, act="relu6", head_rule="width_min", paper=PAPERS["v2"]),
    "mobilenet_v3_large": NetConfig(MOBILENET_V3_LARGE, head=960, hidden=1280, **_V3),
    "mobilenet_v3_small": NetConfig(MOBILENET_V3_SMALL, head=576, hidden=1024, **_V3),
    "mobilenet_v3_large_minimal": NetConfig(_minimal(MOBILENET_V3_LARGE), head=960, hidden=1280,
                                            **{**_V3, "act": "relu"}),
    "mobilenet_v3_small_minimal": NetConfig(_minimal(MOBILENET_V3_SMALL), head=576, hidden=1024,
                                            **{**_V3, "act": "relu"}),
    "mnasnet_b1": NetConfig(MNASNET_B1, stem=32, act="relu", head_rule="fixed", momentum=1 - 0.9997,
                            paper=PAPERS["mnasnet"]),
    "mnasnet_a1": NetConfig(MNASNET_A1, stem=32, act="relu", head_rule="fixed", paper=PAPERS["mnasnet"]),
    "mnasnet_small": NetConfig(MNASNET_SMALL, stem=8, act="relu", head_rule="fixed", paper=PAPERS["mnasnet"]),
    "efficientnet": NetConfig(EFFICIENTNET, stem=32, act="silu", drop_path_rate=0.2,
                              paper=PAPERS["efficientnet"]),
    "efficientnet_lite": NetConfig(_no_se(EFFICIENTNET), stem=32, act="relu6", head_rule="fixed", fix_stem=True,
                                   fix_first_last=True, drop_path_rate=0.2, paper=PAPERS["lite"]),
    "efficientnet_v2_s": NetConfig(EFFICIENTNET_V2_S, stem=24, **_V2NET),
    "efficientnet_v2_m": NetConfig(EFFICIENTNET_V2_M, stem=24, **_V2NET),
    "efficientnet_v2_l": NetConfig(EFFICIENTNET_V2_L, stem=32, **_V2NET),
    "efficientnet_v2_xl": NetConfig(EFFICIENTNET_V2_XL, stem=32, **_V2NET),
    "efficientnet_v2_base": NetConfig(EFFICIENTNET_V2_BASE, stem=32, round_limit=0.0,
                                      **{**_V2NET, "head_rule": "width"}),
    "efficientnet_v2_rw": NetConfig(EFFICIENTNET_V2_RW, stem=24, head=1792,
                                    **{**_V2NET, "head_rule": "width", "eps": 1e-5}),
}

OVERRIDABLE = tuple(f.name for f in fields(NetConfig) if f.name not in ("rows", "overridable", "paper"))


def get_config(name: str, **overrides: Any) -> NetConfig:
    """The config called ``name``, with some fields overridden (``eps``, ``padding``, ``act``...).

    Raises:
        mhub.ConfigError: an unknown config (the message lists the valid ones) or an unknown override.
    """
    if name not in CONFIGS:
        close = difflib.get_close_matches(name, CONFIGS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown config {name!r}{hint}; valid configs: {', '.join(sorted(CONFIGS))}")
    unknown = set(overrides) - set(OVERRIDABLE)
    if unknown:
        raise ConfigError(f"unknown config option(s) {sorted(unknown)}; valid: {', '.join(OVERRIDABLE)}")
    return replace(CONFIGS[name], **overrides) if overrides else CONFIGS[name]


# -- registered architectures ------------------------------------------------------------------------------
# name -> (family, config, width multiplier, depth multiplier, other builder defaults, parameter count).
# Parameter counts: torchvision's published ``num_params`` where torchvision has the model, else the count of
# the timm model of the same name (the project's test suite checks both against the libraries).
_TF = {"padding": "same", **TF_BN}
ARCHS: dict[str, tuple[str, str, float, Any, dict, int]] = {
    # MobileNet family: torchvision
    "mobilenet_v1": ("mobilenet", "mobilenet_v1", 1.0, 1.0, {}, 4231976),
    "mobilenet_v2": ("mobilenet", "mobilenet_v2", 1.0, 1.0, {}, 3504872),
    "mobilenet_v3_large": ("mobilenet", "mobilenet_v3_large", 1.0, 1.0, TF_BN, 5483032),
    "mobilenet_v3_small": ("mobilenet", "mobilenet_v3_small", 1.0, 1.0, TF_BN, 2542856),
    "mnasnet0_5": ("mobilenet", "mnasnet_b1", 0.5, 1.0, {}, 2218512),
    "mnasnet0_75": ("mobilenet", "mnasnet_b1", 0.75, 1.0, {}, 3170208),
    "mnasnet1_0": ("mobilenet", "mnasnet_b1", 1.0, 1.0, {}, 4383312),
    "mnasnet1_3": ("mobilenet", "mnasnet_b1", 1.3, 1.0, {}, 6282256),
    # torchvision's mnasnet0_5 weights predate its "version 2" MNASNet: 32-channel stem, 16-channel first block
    "mnasnet0_5_v1stem": ("mobilenet", "mnasnet_b1", 0.5, 1.0, {"fix_stem": True, "fix_first_row": True},
                          2220824),
    # MobileNet family: timm-only variants (PyTorch BatchNorm constants unless tf_)
    "semnasnet_075": ("mobilenet", "mnasnet_a1", 0.75, 1.0, {}, 2912278),
    "semnasnet_100": ("mobilenet", "mnasnet_a1", 1.0, 1.0, {}, 3887038),
    "mnasnet_small": ("mobilenet", "mnasnet_small", 1.0, 1.0, {}, 2030264),
    "mobilenetv3_large_100": ("mobilenet", "mobilenet_v3_large", 1.0, 1.0, {}, 5483032),
    "mobilenetv3_small_050": ("mobilenet", "mobilenet_v3_small", 0.5, 1.0, {"fix_stem": True}, 1593224),
    "mobilenetv3_small_075": ("mobilenet", "mobilenet_v3_small", 0.75, 1.0, {}, 2041872),
    "mobilenetv3_small_100": ("mobilenet", "mobilenet_v3_small", 1.0, 1.0, {}, 2542856),
    "tf_mobilenetv3_large_075": ("mobilenet", "mobilenet_v3_large", 0.75, 1.0, _TF, 3993528),
    "tf_mobilenetv3_large_100": ("mobilenet", "mobilenet_v3_large", 1.0, 1.0, _TF, 5483032),
    "tf_mobilenetv3_large_minimal_100": ("mobilenet", "mobilenet_v3_large_minimal", 1.0, 1.0, _TF, 3924288),
    "tf_mobilenetv3_small_075": ("mobilenet", "mobilenet_v3_small", 0.75, 1.0, _TF, 2041872),
    "tf_mobilenetv3_small_100": ("mobilenet", "mobilenet_v3_small", 1.0, 1.0, _TF, 2542856),
    "tf_mobilenetv3_small_minimal_100": ("mobilenet", "mobilenet_v3_small_minimal", 1.0, 1.0, _TF, 2044736),
    # EfficientNet family: torchvision
    "efficientnet_b0": ("efficientnet", "efficientnet", 1.0, 1.0, {"dropout": 0.2}, 5288548),
    "efficientnet_b1": ("efficientnet", "efficientnet", 1.0, 1.1, {"dropout": 0.2}, 7794184),
    "efficientnet_b2": ("efficientnet", "efficientnet", 1.1, 1.2, {"dropout": 0.3}, 9109994),
    "efficientnet_b3": ("efficientnet", "efficientnet", 1.2, 1.4, {"dropout": 0.3}, 12233232),
    "efficientnet_b4": ("efficientnet", "efficientnet", 1.4, 1.8, {"dropout": 0.4}, 19341616),
    "efficientnet_b5": ("efficientnet", "efficientnet", 1.6, 2.2, {"dropout": 0.4, **TF_BN}, 30389784),
    "efficientnet_b6": ("efficientnet", "efficientnet", 1.8, 2.6, {"dropout": 0.5, **TF_BN}, 43040704),
    "efficientnet_b7": ("efficientnet", "efficientnet", 2.0, 3.1, {"dropout": 0.5, **TF_BN}, 66347960),
    "efficientnet_v2_s": ("efficientnet", "efficientnet_v2_s", 1.0, 1.0, {"dropout": 0.2}, 21458488),
    "efficientnet_v2_m": ("efficientnet", "efficientnet_v2_m", 1.0, 1.0, {"dropout": 0.3}, 54139356),
    "efficientnet_v2_l": ("efficientnet", "efficientnet_v2_l", 1.0, 1.0, {"dropout": 0.4}, 118515272),
    # EfficientNet family: timm-only variants
    "efficientnet_lite0": ("efficientnet", "efficientnet_lite", 1.0, 1.0, {"dropout": 0.2}, 4652008),
    "efficientnet_lite1": ("efficientnet", "efficientnet_lite", 1.0, 1.1, {"dropout": 0.2}, 5416680),
    "efficientnet_lite2": ("efficientnet", "efficientnet_lite", 1.1, 1.2, {"dropout": 0.3}, 6092072),
    "efficientnet_lite3": ("efficientnet", "efficientnet_lite", 1.2, 1.4, {"dropout": 0.3}, 8197096),
    "efficientnet_lite4": ("efficientnet", "efficientnet_lite", 1.4, 1.8, {"dropout": 0.3}, 13006568),
    "tf_efficientnet_lite0": ("efficientnet", "efficientnet_lite", 1.0, 1.0, {"dropout": 0.2, **_TF}, 4652008),
    "tf_efficientnet_lite1": ("efficientnet", "efficientnet_lite", 1.0, 1.1, {"dropout": 0.2, **_TF}, 5416680),
    "tf_efficientnet_lite2": ("efficientnet", "efficientnet_lite", 1.1, 1.2, {"dropout": 0.3, **_TF}, 6092072),
    "tf_efficientnet_lite3": ("efficientnet", "efficientnet_lite", 1.2, 1.4, {"dropout": 0.3, **_TF}, 8197096),
    "tf_efficientnet_lite4": ("efficientnet", "efficientnet_lite", 1.4, 1.8, {"dropout": 0.3, **_TF}, 13006568),
    "tf_efficientnet_b0": ("efficientnet", "efficientnet", 1.0, 1.0, {"dropout": 0.2, **_TF}, 5288548),
    "tf_efficientnet_b1": ("efficientnet", "efficientnet", 1.0, 1.1, {"dropout": 0.2, **_TF}, 7794184),
    "tf_efficientnet_b2": ("efficientnet", "efficientnet", 1.1, 1.2, {"dropout": 0.3, **_TF}, 9109994),
    "tf_efficientnet_b3": ("efficientnet", "efficientnet", 1.2, 1.4, {"dropout": 0.3, **_TF}, 12233232),
    "tf_efficientnet_b4": ("efficientnet", "efficientnet", 1.4, 1.8, {"dropout": 0.4, **_TF}, 19341616),
    "tf_efficientnet_b5": ("efficientnet", "efficientnet", 1.6, 2.2, {"dropout": 0.4, **_TF}, 30389784),
    "tf_efficientnet_b6": ("efficientnet", "efficientnet", 1.8, 2.6, {"dropout": 0.5, **_TF}, 43040704),
    "tf_efficientnet_b7": ("efficientnet", "efficientnet", 2.0, 3.1, {"dropout": 0.5, **_TF}, 66347960),
    "tf_efficientnet_b8": ("efficientnet", "efficientnet", 2.2, 3.6, {"dropout": 0.5, **_TF}, 87413142),
    "tf_efficientnetv2_s": ("efficientnet", "efficientnet_v2_s", 1.0, 1.0, {"padding": "same"}, 21458488),
    "tf_efficientnetv2_m": ("efficientnet", "efficientnet_v2_m", 1.0, 1.0, {"padding": "same"}, 54139356),
    "tf_efficientnetv2_l": ("efficientnet", "efficientnet_v2_l", 1.0, 1.0, {"padding": "same"}, 118515272),
    "tf_efficientnetv2_xl": ("efficientnet", "efficientnet_v2_xl", 1.0, 1.0, {"padding": "same"}, 208119808),
    "tf_efficientnetv2_b0": ("efficientnet", "efficientnet_v2_base", 1.0, 1.0, {"padding": "same"}, 7139704),
    "tf_efficientnetv2_b1": ("efficientnet", "efficientnet_v2_base", 1.0, 1.1, {"padding": "same"}, 8141052),
    "tf_efficientnetv2_b2": ("efficientnet", "efficientnet_v2_base", 1.1, 1.2, {"padding": "same"}, 10096086),
    "tf_efficientnetv2_b3": ("efficientnet", "efficientnet_v2_base", 1.2, 1.4, {"padding": "same"}, 14358406),
    "efficientnetv2_rw_t": ("efficientnet", "efficientnet_v2_s", 0.8, 0.9, {"eps": 1e-5, "head_rule": "width"},
                            13649388),
    "efficientnetv2_rw_s": ("efficientnet", "efficientnet_v2_rw", 1.0, 1.0, {}, 23941296),
    "efficientnetv2_rw_m": ("efficientnet", "efficientnet_v2_rw", 1.2, (1.2, 1.2, 1.2, 1.2, 1.6, 1.6), {},
                            53236442),
}


def arch_defaults(name: str) -> dict[str, Any]:
    """The builder defaults registered for architecture ``name`` (``config``, multipliers, options)."""
    _, config, width_mult, depth_mult, options, _ = ARCHS[name]
    return {"config": config, "width_mult": width_mult, "depth_mult": depth_mult, **options}
