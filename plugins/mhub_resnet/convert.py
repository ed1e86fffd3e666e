"""Key maps from torchvision and timm ResNet-family state dicts to mhub's layout (torch-free).

mhub layout: ``backbone.stem.<i>.{conv,norm}``, ``backbone.stages.<s>.<b>.<unit>.{conv,norm}`` with units
``conv1``/``conv2``/``conv3`` (Res2Net: ``convs.<i>``), ``attn.fc1``/``attn.fc2``,
``downsample.{conv,norm}`` and ``classifier.fc``. Values pass through unchanged; only keys move.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mhub.keymap import NORM_PARAM, map_keys

_BLOCK = re.compile(r"^layer([1-9])\.(\d+)\.(.+)$")


def _block_key(rest: str, prefix: str, keys: set[str], *, attn: str) -> str | None:
    """Map the part of a block key after ``layerN.M.``; ``None`` when it is not a block parameter."""
    if m := re.match(r"^conv([123])\.weight$", rest):
        return f"{prefix}.conv{m[1]}.conv.weight"
    if m := re.match(rf"^bn([123])\.{NORM_PARAM}$", rest):
        return f"{prefix}.conv{m[1]}.norm.{m[2]}"
    if m := re.match(r"^convs\.(\d+)\.weight$", rest):
        return f"{prefix}.convs.{m[1]}.conv.weight"
    if m := re.match(rf"^bns\.(\d+)\.{NORM_PARAM}$", rest):
        return f"{prefix}.convs.{m[1]}.norm.{m[2]}"
    if m := re.match(rf"^{attn}\.(fc[12])\.(weight|bias)$", rest):
        return f"{prefix}.attn.{m[1]}.{m[2]}"
    if m := re.match(r"^downsample\.(\d)\.(.+)$", rest):
        # Projection shortcuts are [conv, norm] or, average-pooled (ResNet-D), [pool, conv, norm].
        pooled = f"{prefix}:downsample.2.weight" in keys
        index, param = int(m[1]) - (1 if pooled else 0), m[2]
        if index == 0 and param == "weight":
            return f"{prefix}.downsample.conv.weight"
        if index == 1 and re.fullmatch(NORM_PARAM, param):
            return f"{prefix}.downsample.norm.{param}"
    return None


def _convert(state_dict: Mapping[str, Any], *, stem: dict[str, str], classifier: str, attn: str,
             layout: str) -> dict[str, Any]:
    # Index which blocks have pooled shortcuts, under a "prefix:rest" spelling so lookups stay exact.
    keys: set[str] = set()
    for key in state_dict:
        if m := _BLOCK.match(key):
            keys.add(f"backbone.stages.{int(m[1]) - 1}.{m[2]}:{m[3]}")

    def rename(key: str) -> str | None:
        if key in stem:
            return stem[key]
        if key.startswith(classifier + "."):
            param = key[len(classifier) + 1:]
            return f"classifier.fc.{param}" if param in ("weight", "bias") else None
        if m := _BLOCK.match(key):
            return _block_key(m[3], f"backbone.stages.{int(m[1]) - 1}.{m[2]}", keys, attn=attn)
        return None

    return map_keys(state_dict, rename, layout=layout)


def _norm_keys(src: str, dst: str) -> dict[str, str]:
    return {f"{src}.{p}": f"{dst}.{p}" for p in ("weight", "bias", "running_mean", "running_var",
                                                  "num_batches_tracked")}


def _timm_stem(state_dict: Mapping[str, Any]) -> dict[str, str]:
    if "conv1.weight" in state_dict:  # 7x7 stem
        return {"conv1.weight": "backbone.stem.0.conv.weight", **_norm_keys("bn1", "backbone.stem.0.norm")}
    # Deep stem: conv1 = [conv, bn, act, conv, bn, act, conv], then bn1.
    return {
        "conv1.0.weight": "backbone.stem.0.conv.weight", **_norm_keys("conv1.1", "backbone.stem.0.norm"),
        "conv1.3.weight": "backbone.stem.1.conv.weight", **_norm_keys("conv1.4", "backbone.stem.1.norm"),
        "conv1.6.weight": "backbone.stem.2.conv.weight", **_norm_keys("bn1", "backbone.stem.2.norm"),
    }


def from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``ResNet`` (resnet, resnext, seresnet/seresnext, res2net/res2next; 7x7 or deep stems) to mhub.

    Raises:
        ConversionError: keys that have no place in the mhub layout.
    """
    return _convert(state_dict, stem=_timm_stem(state_dict), classifier="fc", attn="se", layout="timm ResNet")


def from_torchvision(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """torchvision ``ResNet`` (resnet, resnext, wide_resnet) to mhub; torchvision's keys are a subset of timm's.

    Raises:
        ConversionError: keys that have no place in the mhub layout.
    """
    return _convert(state_dict, stem=_timm_stem(state_dict), classifier="fc", attn="se", layout="torchvision ResNet")


def from_timm_legacy_senet(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm's legacy ``SENet`` (legacy_seresnet*, legacy_seresnext*: Cadene's layout) to mhub.

    Raises:
        ConversionError: keys that have no place in the mhub layout (e.g. SENet-154's 3x3 stem).
    """
    stem = {"layer0.conv1.weight": "backbone.stem.0.conv.weight", **_norm_keys("layer0.bn1", "backbone.stem.0.norm")}
    return _convert(state_dict, stem=stem, classifier="last_linear", attn="se_module", layout="timm legacy SENet")
