"""Key maps from torchvision's and timm's ConvNeXt and timm's ConvMixer checkpoints to mhub's layout (torch-free).

ConvNeXt: ``backbone.stem.{conv,norm}``, ``backbone.stages.<s>.downsample.{norm,conv}`` (stages 1-3),
``backbone.stages.<s>.blocks.<b>.{conv_dw,norm,mlp.fc1,mlp.fc2,ls.gamma}``, ``classifier.{norm,fc}``.
ConvMixer: ``backbone.stem.{conv,norm}``, ``backbone.blocks.<i>.{dw,pw}.{conv,norm}``, ``classifier.fc``.

Besides renaming, two maps reshape without changing values: torchvision's layer scale ``(C, 1, 1)`` becomes
``(C,)``, and timm's 1x1-convolution MLPs (``conv_mlp`` models: atto ... nano) become linear weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mhub.keymap import NORM_PARAM, PARAM, rename_keys


def _flat(tensor):
    """Drop trailing unit axes: a 1x1 convolution ``(C_out, C_in, 1, 1)`` read as a linear ``(C_out, C_in)``, a
    broadcastable scale ``(C, 1, 1)`` as ``(C,)``."""
    shape = list(tensor.shape)
    while len(shape) > 1 and shape[-1] == 1:
        shape.pop()
    return tensor.reshape(shape)


# torchvision's features: 0 stem, 1/3/5/7 the stages' blocks, 2/4/6 the downsampling before stages 1-3
def _tv_block(part: str):
    return lambda m: f"backbone.stages.{(int(m[1]) - 1) // 2}.blocks.{m[2]}.{part}{m[3] if m.re.groups > 2 else ''}"


def _tv_downsample(part: str):
    return lambda m: f"backbone.stages.{int(m[1]) // 2}.downsample.{part}.{m[2]}"


CONVNEXT_TORCHVISION_RULES = [
    (rf"features\.0\.0\.{PARAM}", r"backbone.stem.conv.\1"),
    (rf"features\.0\.1\.{PARAM}", r"backbone.stem.norm.\1"),
    (rf"features\.([1357])\.(\d+)\.block\.0\.{PARAM}", _tv_block("conv_dw.")),
    (rf"features\.([1357])\.(\d+)\.block\.2\.{PARAM}", _tv_block("norm.")),
    (rf"features\.([1357])\.(\d+)\.block\.3\.{PARAM}", _tv_block("mlp.fc1.")),
    (rf"features\.([1357])\.(\d+)\.block\.5\.{PARAM}", _tv_block("mlp.fc2.")),
    (r"features\.([1357])\.(\d+)\.layer_scale", _tv_block("ls.gamma"), _flat),
    (rf"features\.([246])\.0\.{PARAM}", _tv_downsample("norm")),
    (rf"features\.([246])\.1\.{PARAM}", _tv_downsample("conv")),
    (rf"classifier\.0\.{PARAM}", r"classifier.norm.\1"),
    (rf"classifier\.2\.{PARAM}", r"classifier.fc.\1"),
]
CONVNEXT_TIMM_RULES = [
    (rf"stem\.0\.{PARAM}", r"backbone.stem.conv.\1"),
    (rf"stem\.1\.{PARAM}", r"backbone.stem.norm.\1"),
    (rf"stages\.(\d)\.downsample\.0\.{PARAM}", r"backbone.stages.\1.downsample.norm.\2"),
    (rf"stages\.(\d)\.downsample\.1\.{PARAM}", r"backbone.stages.\1.downsample.conv.\2"),
    (rf"stages\.(\d)\.blocks\.(\d+)\.(conv_dw|norm)\.{PARAM}", r"backbone.stages.\1.blocks.\2.\3.\4"),
    # 1x1-convolution MLPs (atto ... nano) to linear weights; _flat leaves linear weights and biases as they are
    (rf"stages\.(\d)\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.{PARAM}", r"backbone.stages.\1.blocks.\2.mlp.\3.\4", _flat),
    (r"stages\.(\d)\.blocks\.(\d+)\.gamma", r"backbone.stages.\1.blocks.\2.ls.gamma"),
    (rf"head\.norm\.{PARAM}", r"classifier.norm.\1"),
    (rf"head\.fc\.{PARAM}", r"classifier.fc.\1"),
]
CONVMIXER_TIMM_RULES = [
    (rf"stem\.0\.{PARAM}", r"backbone.stem.conv.\1"),
    (rf"stem\.2\.{NORM_PARAM}", r"backbone.stem.norm.\1"),
    (rf"blocks\.(\d+)\.0\.fn\.0\.{PARAM}", r"backbone.blocks.\1.dw.conv.\2"),
    (rf"blocks\.(\d+)\.0\.fn\.2\.{NORM_PARAM}", r"backbone.blocks.\1.dw.norm.\2"),
    (rf"blocks\.(\d+)\.1\.{PARAM}", r"backbone.blocks.\1.pw.conv.\2"),
    (rf"blocks\.(\d+)\.3\.{NORM_PARAM}", r"backbone.blocks.\1.pw.norm.\2"),
    (rf"head\.{PARAM}", r"classifier.fc.\1"),
]


def convnext_from_torchvision(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """torchvision ``ConvNeXt`` (convnext_tiny ... convnext_large) to mhub.

    Raises:
        ConversionError: keys with no place in the mhub layout.
    """
    return rename_keys(state_dict, CONVNEXT_TORCHVISION_RULES, layout="torchvision ConvNeXt")


def convnext_from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``ConvNeXt`` (patch stem, pool-then-norm head; linear or 1x1-conv MLPs) to mhub.

    Raises:
        ConversionError: keys with no place in the mhub layout (e.g. ConvNeXt-V2's GRN, overlapping stems,
            ``norm_pre`` of norm-first heads).
    """
    return rename_keys(state_dict, CONVNEXT_TIMM_RULES, layout="timm ConvNeXt")


def convmixer_from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``ConvMixer`` to mhub.

    Raises:
        ConversionError: keys with no place in the mhub layout.
    """
    return rename_keys(state_dict, CONVMIXER_TIMM_RULES, layout="timm ConvMixer")
