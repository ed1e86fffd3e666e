"""Key maps from torchvision's and timm's classic CNNs to mhub's layout (no torch import).

Registered as ``torchvision.classic`` (:func:`from_torchvision`: AlexNet, VGG, SqueezeNet, DenseNet, GoogLeNet;
the architecture is recognised from the keys), ``timm.classic`` (:func:`from_timm`: timm's ``vgg*`` and
``densenet*``) and ``torchvision.classic_features`` (:func:`features_from_torchvision`: the backbone only, for
weights whose classifier upstream declares unusable). The layouts they produce are described in the
docstrings of :mod:`mhub_classic.alexnet`, ``vgg``, ``squeezenet``, ``densenet`` and ``googlenet``. Apart from
timm's VGG head (see :func:`from_timm`), values pass through unchanged: only keys move.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mhub import ConversionError
from mhub.keymap import NORM_PARAM, map_keys

Renamer = Callable[[str], "str | None"]  # upstream key -> our key, None when it has no place
_ALEXNET_CONVS = {0: "conv1.conv", 3: "conv2.conv", 6: "conv3.conv", 8: "conv4.conv", 10: "conv5.conv"}
_ALEXNET_LINEARS = {1: "fc1", 4: "fc2", 6: "fc"}
_VGG_LINEARS = {0: "fc1", 3: "fc2", 6: "fc"}
_GOOGLENET_BRANCHES = {"branch1": "branch1x1", "branch2.0": "branch3x3.reduce", "branch2.1": "branch3x3.conv",
                       "branch3.0": "branch5x5.reduce", "branch3.1": "branch5x5.conv", "branch4.1": "branch_pool.proj"}


def _indexed(pattern: str, mapping: Mapping[int, str], ours: str) -> Renamer:
    """Rename ``<pattern with one index group>.<param>`` through ``mapping`` to ``<ours>.<name>.<param>``."""
    regex = re.compile(rf"{pattern}\.(weight|bias)")

    def rename(key: str) -> str | None:
        m = regex.fullmatch(key)
        if m and int(m[1]) in mapping:
            return f"{ours}.{mapping[int(m[1])]}.{m[2]}"
        return None

    return rename


def _either(*renamers: Renamer) -> Renamer:
    return lambda key: next((new for rename in renamers if (new := rename(key)) is not None), None)


# -- one renamer per architecture: built from the whole state dict, since indices depend on it ----------
def _alexnet(state_dict: Mapping[str, Any]) -> Renamer:
    return _either(_indexed(r"features\.(\d+)", _ALEXNET_CONVS, "backbone"),
                   _indexed(r"classifier\.(\d+)", _ALEXNET_LINEARS, "classifier"))


def _vgg_features(state_dict: Mapping[str, Any]) -> dict[int, str]:
    """``features.<i>`` index -> our unit part under ``backbone`` (``stages.<s>.<j>.conv`` / ``.norm``).

    torchvision's ``features`` is one flat Sequential: conv, [BatchNorm], ReLU per unit and a max pool after
    each stage. Pools and ReLUs hold no tensors, so a stage ends where the gap to the next convolution is one
    longer than a unit.
    """
    indices = sorted({int(m[1]) for key in state_dict if (m := re.match(r"features\.(\d+)\.", key))})
    norms = {i for i in indices if f"features.{i}.running_mean" in state_dict}
    unit_length = 3 if norms else 2
    parts, stage, unit, previous = {}, 0, -1, None
    for i in indices:
        if i in norms:
            continue
        if previous is not None and i - previous > unit_length:
            stage, unit = stage + 1, 0
        else:
            unit += 1
        parts[i] = f"stages.{stage}.{unit}.conv"
        if i + 1 in norms:
            parts[i + 1] = f"stages.{stage}.{unit}.norm"
        previous = i
    return parts


def _vgg(state_dict: Mapping[str, Any]) -> Renamer:
    features = _vgg_features(state_dict)
    regex = re.compile(rf"features\.(\d+)\.{NORM_PARAM}")

    def feature(key: str) -> str | None:
        m = regex.fullmatch(key)
        return f"backbone.{features[int(m[1])]}.{m[2]}" if m and int(m[1]) in features else None

    return _either(feature, _indexed(r"classifier\.(\d+)", _VGG_LINEARS, "classifier"))


def _squeezenet(state_dict: Mapping[str, Any]) -> Renamer:
    fires = sorted({int(m[1]) for key in state_dict if (m := re.match(r"features\.(\d+)\.squeeze\.", key))})
    numbers = {i: n for n, i in enumerate(fires, 2)}  # the paper numbers fire modules from 2
    regex = re.compile(r"features\.(\d+)\.(squeeze|expand1x1|expand3x3)\.(weight|bias)")

    def fire(key: str) -> str | None:
        m = regex.fullmatch(key)
        return f"backbone.fire{numbers[int(m[1])]}.{m[2]}.conv.{m[3]}" if m else None

    return _either(fire, _indexed(r"features\.(\d+)", {0: "conv1.conv"}, "backbone"),
                   _indexed(r"classifier\.(\d+)", {1: "fc"}, "classifier"))


def _densenet(state_dict: Mapping[str, Any]) -> Renamer:
    # Dense layers: torchvision's checkpoints spell "norm.1" where its modules now say "norm1".
    layer = re.compile(rf"features\.denseblock(\d+)\.denselayer(\d+)\.(norm|conv)\.?([12])\.{NORM_PARAM}")
    transition = re.compile(rf"features\.transition(\d+)\.(norm|conv)\.{NORM_PARAM}")
    fixed = re.compile(rf"(features\.conv0|features\.norm0|features\.norm5|classifier)\.{NORM_PARAM}")
    places = {"features.conv0": "backbone.stem.conv", "features.norm0": "backbone.stem.norm",
              "features.norm5": "backbone.norm", "classifier": "classifier.fc"}

    def rename(key: str) -> str | None:
        if m := layer.fullmatch(key):
            return f"backbone.stages.{int(m[1]) - 1}.layers.{int(m[2]) - 1}.conv{m[4]}.{m[3]}.{m[5]}"
        if m := transition.fullmatch(key):
            return f"backbone.stages.{m[1]}.transition.{m[2]}.{m[3]}"
        if m := fixed.fullmatch(key):
            return f"{places[m[1]]}.{m[2]}"
        return None

    return rename


def _googlenet(state_dict: Mapping[str, Any]) -> Renamer:
    unit = re.compile(rf"(conv[123]|inception\w+\.branch[1-4](?:\.[01])?|aux[12]\.conv)\.(conv|bn)\.{NORM_PARAM}")
    linear = re.compile(r"(fc|aux[12]\.fc[12])\.(weight|bias)")
    aux_linears = {"fc1": "fc1", "fc2": "fc"}

    def rename(key: str) -> str | None:
        if m := unit.fullmatch(key):
            owner, part = m[1], "norm" if m[2] == "bn" else "conv"
            if owner.startswith("inception"):
                module, branch = owner.split(".", 1)
                if branch not in _GOOGLENET_BRANCHES:
                    return None
                owner = f"backbone.{module}.{_GOOGLENET_BRANCHES[branch]}"
            elif owner.startswith("conv"):
                owner = f"backbone.{owner}"
            return f"{owner}.{part}.{m[3]}"
        if m := linear.fullmatch(key):
            if m[1] == "fc":
                return f"classifier.fc.{m[2]}"
            head, layer = m[1].split(".")
            return f"{head}.{aux_linears[layer]}.{m[2]}"
        return None

    return rename


# -- entry points --------------------------------------------------------------------------------------------
def _layout(state_dict: Mapping[str, Any]) -> tuple[str, Callable[..., Renamer]]:
    """Which torchvision architecture wrote ``state_dict`` (DenseNet's keys are timm's too)."""
    if "features.conv0.weight" in state_dict:
        return "DenseNet", _densenet
    if "inception3a.branch1.conv.weight" in state_dict:
        return "GoogLeNet", _googlenet
    if any(".squeeze." in key for key in state_dict):
        return "SqueezeNet", _squeezenet
    if "classifier.1.weight" in state_dict:
        return "AlexNet", _alexnet
    if "features.0.weight" in state_dict:
        return "VGG", _vgg
    raise ConversionError("not a torchvision AlexNet, VGG, SqueezeNet, DenseNet or GoogLeNet state dict (no "
                          "features.conv0, inception3a, fire-module, features.0 or classifier keys)")


def from_torchvision(state_dict: Mapping[str, Any], *, aux_logits: bool = False) -> dict[str, Any]:
    """torchvision AlexNet, VGG (``_bn`` too), SqueezeNet, DenseNet or GoogLeNet -> mhub.

    Args:
        state_dict: the upstream state dict; the architecture is recognised from its keys.
        aux_logits: keep GoogLeNet's auxiliary classifiers (``aux1.*``, ``aux2.*``) for a model built with
            ``aux_logits=True``. By default they are left out: torchvision's GoogLeNet checkpoint carries
            untrained ones, which torchvision itself drops on load, and our default model has none.

    Raises:
        ConversionError: an unrecognised layout, or keys that have no place in ours (listed).
    """
    layout, renamer = _layout(state_dict)
    drop = [r"aux[12]\..*"] if layout == "GoogLeNet" and not aux_logits else []
    return map_keys(state_dict, renamer(state_dict), layout=f"torchvision {layout}", drop=drop)


def features_from_torchvision(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The backbone of a torchvision checkpoint whose classifier is unusable (``vgg16`` ``IMAGENET1K_FEATURES``).

    Every key is checked as by :func:`from_torchvision`; the classifier's are then left out, so the weights load
    into a model built with ``num_classes=0`` and no hidden layers (the manifest entry's ``model_args``).
    """
    return {k: v for k, v in from_torchvision(state_dict).items() if k.startswith("backbone.")}


def from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``vgg*`` or ``densenet*`` -> mhub.

    timm's DenseNet keys are torchvision's. timm's VGG computes its first two dense layers as convolutions
    (``pre_logits.fc1``: 7x7, ``pre_logits.fc2``: 1x1) and names the last ``head.fc``; their weights are
    reshaped to our linear layers' ``(out, in * 7 * 7)`` / ``(out, in)``, which is exact at the 224 px the
    weights were made for (a 7x7 feature map). That reshape is not a pure renaming, so ``mhub validate
    --reference timm:vgg*`` cannot invert this map: give it the original checkpoint with
    ``--reference-weights``.

    Raises:
        ConversionError: an unrecognised layout, or keys that have no place in ours (listed).
    """
    if "pre_logits.fc1.weight" not in state_dict:
        return from_torchvision(state_dict)
    head = {"pre_logits.fc1": "classifier.fc1", "pre_logits.fc2": "classifier.fc2", "head.fc": "classifier.fc"}
    out = from_torchvision({k: v for k, v in state_dict.items() if k.rsplit(".", 1)[0] not in head})
    for theirs, ours in head.items():
        for param in ("weight", "bias"):
            if f"{theirs}.{param}" not in state_dict:
                raise ConversionError(f"timm VGG checkpoint: missing '{theirs}.{param}'")
            value = state_dict[f"{theirs}.{param}"]
            out[f"{ours}.{param}"] = value.reshape(value.shape[0], -1) if param == "weight" else value
    return out
