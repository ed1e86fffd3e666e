"""Key maps from torchvision and timm Inception-family state dicts to mhub's layout (torch-free).

mhub layout (see :mod:`mhub_inception.model`): conv units ``<unit>.conv`` / ``<unit>.norm``; Inception modules
``backbone.stages.<s>.<b>.branch<i>.<j>`` (a fork: ``.<j>.<k>``), Inception-ResNet blocks
``….branches.branch<i>.<j>`` and ``….proj``; Xception blocks ``backbone.<flow>.<b>.stack.conv<i>.dw|pw``,
``….shortcut`` and (pre-activation) ``….pre.norm``; ``classifier.fc``.

- :func:`from_torchvision`: torchvision's ``Inception3`` (also timm's ``inception_v3``, which shares its keys),
  its trained auxiliary classifier (``AuxLogits.*``) included, as ``aux.*``: a model built with
  ``aux_logits=True`` gets it, one built without drops it when loading (the architecture declares ``aux`` in
  ``aux_classifiers``).
- :func:`from_timm`: timm's ``inception_v3``, ``inception_v4``, ``inception_resnet_v2``, ``legacy_xception``
  and ``xception41/65/71(p)``, told apart by their first convolution's key.
- :func:`from_timm_with_background`: timm's legacy ``inception_v4`` / ``inception_resnet_v2`` files, whose
  classifier still has TF-slim's background class first (1001 outputs, timm's ``label_offset=1``).

Values pass through unchanged (but for the background class); only keys move. Keys that have no place raise
:class:`mhub.ConversionError` listing them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mhub import ConversionError
from mhub.keymap import NORM_PARAM, map_keys

from . import configs

_UNIT = re.compile(rf"^(conv\.weight|bn\.(?:{NORM_PARAM}))$")


def _unit(rest: str) -> str | None:
    """``conv.weight`` / ``bn.<param>`` of an upstream conv-bn-act module, in our unit's names."""
    if _UNIT.match(rest):
        return rest.replace("bn.", "norm.", 1)
    return None


def _join(prefix: str, rest: str | None) -> str | None:
    return None if rest is None else f"{prefix}.{rest}"


def _split(key: str) -> tuple[str, str]:
    head, _, rest = key.partition(".")
    return head, rest


# -- Inception v3 (torchvision Inception3, timm InceptionV3) ---------------------------------------------
_V3_STEM = {"Conv2d_1a_3x3": "conv1a", "Conv2d_2a_3x3": "conv2a", "Conv2d_2b_3x3": "conv2b",
            "Conv2d_3b_1x1": "conv3b", "Conv2d_4a_3x3": "conv4a"}
# torchvision's branch names per module type -> our branch.layer[.fork part]
_V3_BRANCHES = {
    "A": {"branch1x1": "branch0.0", "branch5x5_1": "branch1.0", "branch5x5_2": "branch1.1",
          "branch3x3dbl_1": "branch2.0", "branch3x3dbl_2": "branch2.1", "branch3x3dbl_3": "branch2.2",
          "branch_pool": "branch3.1"},
    "B": {"branch3x3": "branch0.0", "branch3x3dbl_1": "branch1.0", "branch3x3dbl_2": "branch1.1",
          "branch3x3dbl_3": "branch1.2"},
    "C": {"branch1x1": "branch0.0", **{f"branch7x7_{i}": f"branch1.{i - 1}" for i in range(1, 4)},
          **{f"branch7x7dbl_{i}": f"branch2.{i - 1}" for i in range(1, 6)}, "branch_pool": "branch3.1"},
    "D": {"branch3x3_1": "branch0.0", "branch3x3_2": "branch0.1",
          **{f"branch7x7x3_{i}": f"branch1.{i - 1}" for i in range(1, 5)}},
    "E": {"branch1x1": "branch0.0", "branch3x3_1": "branch1.0", "branch3x3_2a": "branch1.1.0",
          "branch3x3_2b": "branch1.1.1", "branch3x3dbl_1": "branch2.0", "branch3x3dbl_2": "branch2.1",
          "branch3x3dbl_3a": "branch2.2.0", "branch3x3dbl_3b": "branch2.2.1", "branch_pool": "branch3.1"},
}
# Mixed_<grid><letter> -> (stage, block, module type)
_V3_MIXED = {"5b": (0, 0, "A"), "5c": (0, 1, "A"), "5d": (0, 2, "A"), "6a": (1, 0, "B"), "6b": (1, 1, "C"),
             "6c": (1, 2, "C"), "6d": (1, 3, "C"), "6e": (1, 4, "C"), "7a": (2, 0, "D"), "7b": (2, 1, "E"),
             "7c": (2, 2, "E")}


def _v3_key(key: str) -> str | None:
    head, rest = _split(key)
    if head in _V3_STEM:
        return _join(f"backbone.stem.{_V3_STEM[head]}", _unit(rest))
    if head == "fc" and rest in ("weight", "bias"):
        return f"classifier.fc.{rest}"
    if head == "AuxLogits":  # conv0, conv1, fc: our aux's conv units and the linear layer of its head
        unit, _, param = rest.partition(".")
        if unit in ("conv0", "conv1"):
            return _join(f"aux.{unit}", _unit(param))
        return f"aux.head.fc.{param}" if unit == "fc" and param in ("weight", "bias") else None
    if (m := re.match(r"^Mixed_(\d[a-e])$", head)) and m[1] in _V3_MIXED:
        stage, block, kind = _V3_MIXED[m[1]]
        name, _, param = rest.partition(".")
        ours = _V3_BRANCHES[kind].get(name)
        if ours is not None:
            return _join(f"backbone.stages.{stage}.{block}.{ours}", _unit(param))
    return None


def from_torchvision(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """torchvision's Inception v3 (or timm's ``inception_v3``) to mhub, ``AuxLogits.*`` to ``aux.*``.

    Raises:
        ConversionError: keys that have no place in the mhub layout.
    """
    return map_keys(state_dict, _v3_key, layout="torchvision Inception v3")


# -- Inception-v4 and Inception-ResNet-v2 (timm, after Cadene's TF-slim ports) -----------------------------
def _timm_branch(rest: str) -> str | None:
    """A timm Inception module's branch key (``branch1.0.conv.weight``, ``branch0.bn.bias``, ``branch2_3a…``)."""
    if m := re.match(r"^(branch\d)\.(\d+)\.(.+)$", rest):  # a Sequential branch
        return _join(f"{m[1]}.{m[2]}", _unit(m[3]))
    if m := re.match(r"^(branch\d)\.(conv\..+|bn\..+)$", rest):  # a single-unit branch
        return _join(f"{m[1]}.0", _unit(m[2]))
    if m := re.match(r"^branch(\d)_(\d)([ab]?)\.(.+)$", rest):  # Inception-v4 C: unit j of branch i, fork a/b
        fork = {"": "", "a": ".0", "b": ".1"}[m[3]]
        return _join(f"branch{m[1]}.{m[2]}{fork}", _unit(m[4]))
    return None


def _v4_key(key: str) -> str | None:
    if key.startswith("last_linear.") and key.count(".") == 1:
        return "classifier.fc." + key.split(".")[1]
    m = re.match(r"^features\.(\d+)\.(.+)$", key)
    if not m:
        return None
    index, rest = int(m[1]), m[2]
    stem = ["conv1a", "conv2a", "conv2b", "mixed3a", "mixed4a", "mixed5a"]
    if index < 3:
        return _join(f"backbone.stem.{stem[index]}", _unit(rest))
    if index == 3 and rest.startswith("conv."):  # Mixed3a = (max-pool, conv)
        return _join("backbone.stem.mixed3a.branch1.0", _unit(rest[len("conv."):]))
    if index == 5 and rest.startswith("conv."):  # Mixed5a = (conv, max-pool)
        return _join("backbone.stem.mixed5a.branch0.0", _unit(rest[len("conv."):]))
    if index == 4:
        return _join("backbone.stem.mixed4a", _timm_branch(rest))
    position = _stage_position(index - len(stem), [len(stage) for stage in configs.INCEPTION_V4])
    return None if position is None else _join(f"backbone.stages.{position}", _timm_branch(rest))


def _stage_position(index: int, repeats: list[int]) -> str | None:
    """``"<stage>.<block>"`` of the ``index``-th block counted over all stages."""
    for stage, count in enumerate(repeats):
        if 0 <= index < count:
            return f"{stage}.{index}"
        index -= count
    return None


_IRV2_STEM = {"conv2d_1a": "conv1a", "conv2d_2a": "conv2a", "conv2d_2b": "conv2b", "conv2d_3b": "conv3b",
              "conv2d_4a": "conv4a"}
_IRV2_REDUCTIONS = {"mixed_5b": 0, "mixed_6a": 1, "mixed_7a": 2}  # the first block of each stage
_IRV2_REPEATS = {"repeat": 0, "repeat_1": 1, "repeat_2": 2}


def _irv2_residual(prefix: str, rest: str) -> str | None:
    if rest in ("conv2d.weight", "conv2d.bias"):
        return f"{prefix}.proj.{rest.split('.')[1]}"
    return _join(f"{prefix}.branches", _timm_branch(rest))


def _irv2_key(key: str) -> str | None:
    head, rest = _split(key)
    if head in _IRV2_STEM:
        return _join(f"backbone.stem.{_IRV2_STEM[head]}", _unit(rest))
    if head == "conv2d_7b":
        return _join("backbone.head", _unit(rest))
    if head == "classif" and rest in ("weight", "bias"):
        return f"classifier.fc.{rest}"
    if head in _IRV2_REDUCTIONS:
        return _join(f"backbone.stages.{_IRV2_REDUCTIONS[head]}.0", _timm_branch(rest))
    if head in _IRV2_REPEATS and (m := re.match(r"^(\d+)\.(.+)$", rest)):
        return _irv2_residual(f"backbone.stages.{_IRV2_REPEATS[head]}.{int(m[1]) + 1}", m[2])
    if head == "block8":  # the last, unscaled and unactivated block of the 8x8 stage
        return _irv2_residual(f"backbone.stages.2.{len(configs.INCEPTION_RESNET_V2[2]) - 1}", rest)
    return None


# -- Xception (Cadene's legacy port) and aligned Xception --------------------------------------------------
def _flows(blocks: list[int], has_shortcut: set[int], exit_blocks: int) -> dict[int, str]:
    """Upstream block number -> ``"<flow>.<index>"``: the entry flow is the leading run of blocks with a
    shortcut, the exit flow the last ``exit_blocks`` blocks, the middle flow the rest."""
    entry = 0
    while entry < len(blocks) and blocks[entry] in has_shortcut:
        entry += 1
    places = {}
    for position, number in enumerate(blocks):
        if position < entry:
            places[number] = f"entry.{position}"
        elif position >= len(blocks) - exit_blocks:
            places[number] = f"exit.{position - (len(blocks) - exit_blocks)}"
        else:
            places[number] = f"middle.{position - entry}"
    return places


def _legacy_xception_map(state_dict: Mapping[str, Any]) -> Callable[[str], str | None]:
    numbers = sorted({int(m[1]) for key in state_dict if (m := re.match(r"^block(\d+)\.", key))})
    skips = {int(m[1]) for key in state_dict if (m := re.match(r"^block(\d+)\.skip\.", key))}
    places = _flows(numbers, skips, 1)
    # rep index of each separable conv, per block: its BatchNorm is the next rep module
    separables: dict[int, list[int]] = {}
    for key in state_dict:
        if m := re.match(r"^block(\d+)\.rep\.(\d+)\.conv1\.weight$", key):
            separables.setdefault(int(m[1]), []).append(int(m[2]))
    for indices in separables.values():
        indices.sort()
    tail = "backbone.exit.1.stack"  # Chollet's two exit convolutions, our last exit block
    fixed = {"conv1.weight": "backbone.stem.conv1.conv.weight", "conv2.weight": "backbone.stem.conv2.conv.weight",
             "fc.weight": "classifier.fc.weight", "fc.bias": "classifier.fc.bias"}
    for number, conv in (("3", "conv1"), ("4", "conv2")):
        fixed[f"conv{number}.conv1.weight"] = f"{tail}.{conv}.dw.conv.weight"
        fixed[f"conv{number}.pointwise.weight"] = f"{tail}.{conv}.pw.conv.weight"
    norms = {"bn1": "backbone.stem.conv1.norm", "bn2": "backbone.stem.conv2.norm", "bn3": f"{tail}.conv1.pw.norm",
             "bn4": f"{tail}.conv2.pw.norm"}

    def rename(key: str) -> str | None:
        if key in fixed:
            return fixed[key]
        head, rest = _split(key)
        if head in norms and re.fullmatch(NORM_PARAM, rest):
            return f"{norms[head]}.{rest}"
        m = re.match(r"^block(\d+)\.(.+)$", key)
        if not m or int(m[1]) not in places:
            return None
        prefix, rest = f"backbone.{places[int(m[1])]}", m[2]
        if rest == "skip.weight":
            return f"{prefix}.shortcut.conv.weight"
        if n := re.match(rf"^skipbn\.({NORM_PARAM})$", rest):
            return f"{prefix}.shortcut.norm.{n[1]}"
        order = separables.get(int(m[1]), [])
        if (n := re.match(r"^rep\.(\d+)\.(conv1|pointwise)\.weight$", rest)) and int(n[1]) in order:
            part = "dw" if n[2] == "conv1" else "pw"
            return f"{prefix}.stack.conv{order.index(int(n[1])) + 1}.{part}.conv.weight"
        if (n := re.match(rf"^rep\.(\d+)\.({NORM_PARAM})$", rest)) and int(n[1]) - 1 in order:
            return f"{prefix}.stack.conv{order.index(int(n[1]) - 1) + 1}.pw.norm.{n[2]}"
        return None

    return rename


_ALIGNED_PARTS = {"conv_dw.weight": "dw.conv.weight", "conv_pw.weight": "pw.conv.weight"}


def _aligned_xception_map(state_dict: Mapping[str, Any]) -> Callable[[str], str | None]:
    numbers = sorted({int(m[1]) for key in state_dict if (m := re.match(r"^blocks\.(\d+)\.", key))})
    shortcuts = {int(m[1]) for key in state_dict if (m := re.match(r"^blocks\.(\d+)\.shortcut\.", key))}
    places = _flows(numbers, shortcuts, 2)

    def rename(key: str) -> str | None:
        if key in ("head.fc.weight", "head.fc.bias"):
            return "classifier.fc." + key.rsplit(".", 1)[1]
        if m := re.match(r"^stem\.([01])\.(.+)$", key):
            ours = f"backbone.stem.conv{int(m[1]) + 1}"
            return f"{ours}.conv.weight" if m[2] == "weight" else _join(ours, _unit(m[2]))  # preact: a bare conv
        m = re.match(r"^blocks\.(\d+)\.(.+)$", key)
        if not m or int(m[1]) not in places:
            return None
        prefix, rest = f"backbone.{places[int(m[1])]}", m[2]
        if rest == "shortcut.weight":  # pre-activation blocks project with a bare conv
            return f"{prefix}.shortcut.conv.weight"
        if rest.startswith("shortcut."):
            return _join(f"{prefix}.shortcut", _unit(rest[len("shortcut."):]))
        if n := re.match(rf"^norm\.({NORM_PARAM})$", rest):
            return f"{prefix}.pre.norm.{n[1]}"
        if not (n := re.match(r"^stack\.(conv\d)\.(.+)$", rest)):
            return None
        conv, part = f"{prefix}.stack.{n[1]}", n[2]
        if part in _ALIGNED_PARTS:
            return f"{conv}.{_ALIGNED_PARTS[part]}"
        if p := re.match(rf"^(bn_dw|bn_pw|norm)\.({NORM_PARAM})$", part):
            return f"{conv}.{'pw' if p[1] == 'bn_pw' else 'dw'}.norm.{p[2]}"
        return None

    return rename


# -- timm entry point -------------------------------------------------------------------------------------
def from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Any timm model of the family to mhub, the layout told by its first convolution's key.

    Raises:
        ConversionError: not a timm Inception-family layout, or keys that have no place in mhub's layout.
    """
    if "Conv2d_1a_3x3.conv.weight" in state_dict:
        return map_keys(state_dict, _v3_key, layout="timm inception_v3")
    if "features.0.conv.weight" in state_dict:
        return map_keys(state_dict, _v4_key, layout="timm inception_v4")
    if "conv2d_1a.conv.weight" in state_dict:
        return map_keys(state_dict, _irv2_key, layout="timm inception_resnet_v2")
    if "conv1.weight" in state_dict and any(key.startswith("block1.rep.") for key in state_dict):
        return map_keys(state_dict, _legacy_xception_map(state_dict), layout="timm legacy_xception")
    if "stem.0.conv.weight" in state_dict:
        return map_keys(state_dict, _aligned_xception_map(state_dict), layout="timm xception_aligned")
    first = ", ".join(list(state_dict)[:3])
    raise ConversionError(f"not a timm Inception-family checkpoint (first keys: {first}); expected the first "
                          "convolution of inception_v3, inception_v4, inception_resnet_v2, legacy_xception or "
                          "xception41/65/71(p)")


def from_timm_with_background(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`from_timm`, then drop the classifier's first row: TF-slim's background class.

    Raises:
        ConversionError: as :func:`from_timm`, or a checkpoint without a classifier.
    """
    out = from_timm(state_dict)
    for key in ("classifier.fc.weight", "classifier.fc.bias"):
        if key not in out:
            raise ConversionError(f"no '{key}' to drop TF-slim's background class from")
        out[key] = out[key][1:]
    return out
