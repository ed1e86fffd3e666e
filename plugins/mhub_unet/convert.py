"""Key map from segmentation_models_pytorch's ``Unet`` (smp 0.6) to mhub's UNet layout (torch-free).

smp: ``encoder.<the encoder's own keys>``, ``decoder.blocks.<i>.conv{1,2}.{0: conv, 1: norm}``,
``segmentation_head.0`` (the 3x3 convolution). Ours: ``backbone.encoder.<the backbone's keys>``,
``backbone.decoder.blocks.<i>.conv{1,2}.{conv,norm}``, ``classifier.conv``.

The encoder's keys go through the backbone family's own registered key map, chosen by a key only that smp
encoder layout has (:data:`SMP_ENCODERS`): torchvision's ResNet and MobileNetV2, lukemelas' and timm's
EfficientNets, and timm's ConvNeXt under smp's ``tu-`` prefix. smp keeps modules its encoder never runs (the
EfficientNets' final 1x1 convolution); our encoder holds only what it runs, so they are dropped. A decoder
other than smp's default converts for the model built to match: ``mhub convert SMP.pth --model unet_resnet34
--from smp --model-arg decoder_channels=64,48,32,16,8 --model-arg decoder_norm=false``. Decoders with attention
(``decoder_attention_type``), a centre block (smp's ``vgg*`` encoders), an auxiliary classification head or an
encoder depth other than 5 have no place in the mhub layout and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mhub import ConversionError

DEPTH = 5  # smp's default encoder_depth, the one whose unused encoder modules are known

# (a key only this smp encoder layout has, the backbone family's key map, our modules smp keeps but never runs)
SMP_ENCODERS = (
    ("layer1.0.conv1.weight", "torchvision.resnet", ()),  # resnet*, resnext*: torchvision's ResNet
    ("_conv_stem.weight", "efficientnet_pytorch.efficientnet", ("backbone.head.",)),  # efficientnet-b0
    ("conv_stem.weight", "timm.efficientnet", ("backbone.head.",)),  # timm-efficientnet-b*
    ("features.0.0.weight", "torchvision.mobilenet", ()),  # mobilenet_v2: torchvision's
    ("stem.0.weight", "timm.convnext", ()),  # tu-convnext_*: timm's features_only model (see _timm_names)
)
# smp's tu- encoders hold timm's features_only model at "model.", whose top-level Sequentials it flattens
_FLATTENED = re.compile(r"^model\.([a-z]+)_(\d+)\.")
# lukemelas' efficientnet-b1 ... b7 (a 17th block) pad for their training size; see mhub_unet.configs
UNREPRODUCIBLE = {"_blocks.16._depthwise_conv.weight": "smp's efficientnet-b1 ... b7 encoders pad for their "
                  "training size (TensorFlow SAME at even sizes, symmetric at odd ones), which no mhub EfficientNet "
                  "reproduces; only efficientnet-b0 converts (timm-efficientnet-b* do, to unet_efficientnet_b*)"}
_DECODER = re.compile(r"decoder\.blocks\.(\d+)\.(conv[12])\.([01])\.(.+)")


def from_smp(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """An smp ``Unet`` state dict in mhub's UNet layout (registered as ``smp.unet``).

    Raises:
        ConversionError: an encoder layout without a key map here, or parts with no place in the mhub layout.
    """
    encoder = {_timm_names(key[len("encoder."):]): value for key, value in state_dict.items()
               if key.startswith("encoder.")}
    out = {f"backbone.encoder.{key}": value for key, value in _encoder(encoder).items()}
    unmapped = []
    blocks = set()
    for key, value in state_dict.items():
        if key.startswith("encoder."):
            continue
        if m := _DECODER.fullmatch(key):
            blocks.add(int(m[1]))
            out[f"backbone.decoder.blocks.{m[1]}.{m[2]}.{'conv' if m[3] == '0' else 'norm'}.{m[4]}"] = value
        elif key in ("segmentation_head.0.weight", "segmentation_head.0.bias"):
            out[f"classifier.conv.{key.rpartition('.')[2]}"] = value
        else:
            unmapped.append(key)
    if unmapped:
        shown = ", ".join(sorted(unmapped)[:6]) + (" ..." if len(unmapped) > 6 else "")
        raise ConversionError(f"smp Unet: {len(unmapped)} key(s) have no place in the mhub UNet (attention, centre "
                              f"block or classification head?): {shown}")
    if len(blocks) != DEPTH:
        raise ConversionError(f"smp Unet with {len(blocks)} decoder blocks: only encoder_depth={DEPTH} (smp's "
                              "default) converts")
    return out


def _timm_names(key: str) -> str:
    """A tu- encoder's key as in timm's model (``model.stages_0.blocks…`` -> ``stages.0.blocks…``)."""
    return _FLATTENED.sub(r"\1.\2.", key)


def _encoder(encoder: Mapping[str, Any]) -> dict[str, Any]:
    from mhub import get_registry
    from mhub._lazy import import_string

    for marker, reason in UNREPRODUCIBLE.items():
        if marker in encoder:
            raise ConversionError(reason)
    for marker, key_map, unused in SMP_ENCODERS:
        if marker in encoder:
            converted = import_string(get_registry().converter(key_map).function)(encoder)
            return {key: value for key, value in converted.items() if not key.startswith(unused)}
    raise ConversionError("smp Unet: the encoder's layout is none of "
                          + ", ".join(key_map for _, key_map, _ in SMP_ENCODERS))
