"""UNet on any mhub backbone that declares feature points, as segmentation_models_pytorch builds its ``Unet``.

Paper: Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image Segmentation" (MICCAI 2015,
arXiv:1505.04597). Matched output for output, in the project's test suite, with
``segmentation_models_pytorch.Unet`` (smp 0.6, ``decoders/unet``): the same decoder blocks (nearest-neighbour
upsampling to the skip's size, concatenation, two 3x3 conv + BatchNorm + ReLU units), the same 3x3
segmentation head and initialisation; smp checkpoints load after :func:`mhub_unet.convert.from_smp`.

Layout::

    backbone.encoder.backbone.…        the backbone's feature extractor (mhub.FeatureNet): its own keys
    backbone.decoder.blocks.<i>.conv1   conv_norm units (conv, norm, act); block 0 works at the coarsest level
    backbone.decoder.blocks.<i>.conv2
    classifier.conv                     3x3 convolution to num_classes (absent when num_classes=0)

Skip connections are the backbone's feature levels at strides 2 ... 2**depth, as smp's ``tu-`` encoders take
timm's ``features_only`` levels; :data:`mhub_unet.configs.UNETS` lists where smp's own encoders tap other
modules. Inputs of any size work as in smp: each block upsamples to its skip's exact size, the last one to the
input's, so sides need not be multiples of 32. (smp's ``efficientnet-b0`` encoder pads statically, as for a
224-pixel input; ``unet_tf_efficientnet_b0`` pads as TensorFlow does for the input at hand, which is the same
wherever the sides are multiples of 32.)

Two levels, as in Metalhead 0.8: :func:`UNet` (a backbone is required) and :func:`unet` (every option); the
registered ``unet_<backbone>`` builders call :func:`unet`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import mhub
from mhub import ConfigError, FeatureError
from mhub._features import FeatureNet, declared_features
from mhub._model import BackboneClassifier
from mhub.families import registry_builder
from mhub.layers import conv_norm

from . import configs

INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


class UNetConfigError(ConfigError):
    """An invalid UNet configuration (the message says what is wrong)."""


class DecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, then two 3x3 conv-norm-ReLU units (smp's block).

    Args:
        in_chs: channels coming from the coarser level.
        skip_chs: channels of the skip connection (0: none).
        out_chs: output channels.
        norm_layer: normalisation after each convolution (``None``: none, the convolutions get a bias).
        interpolation: ``F.interpolate`` mode of the upsampling.
    """

    def __init__(self, in_chs: int, skip_chs: int, out_chs: int, *,
                 norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d, interpolation: str = "nearest"):
        super().__init__()
        self.interpolation = interpolation
        self.conv1 = conv_norm(3, in_chs + skip_chs, out_chs, nn.ReLU, norm_layer=norm_layer)
        self.conv2 = conv_norm(3, out_chs, out_chs, nn.ReLU, norm_layer=norm_layer)

    def forward(self, x: torch.Tensor, size: Sequence[int], skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, size=tuple(size), mode=self.interpolation)
        if skip is not None:
            x = torch.cat([x, skip], 1)
        return self.conv2(self.conv1(x))

    def extra_repr(self) -> str:
        return f"interpolation={self.interpolation!r}"


class UNetDecoder(nn.Module):
    """Blocks from the coarsest level up to the input's resolution.

    Args:
        encoder_chs: channels of the encoder's levels at strides 2, 4, ..., ``2**depth`` (0: no such level).
        decoder_channels: output channels of each block, coarsest first; ``depth`` is their count.
        norm_layer, interpolation: see :class:`DecoderBlock`.
    """

    def __init__(self, encoder_chs: Sequence[int], decoder_channels: Sequence[int], *,
                 norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d, interpolation: str = "nearest"):
        super().__init__()
        depth = len(decoder_channels)
        skips = [*reversed(encoder_chs[:depth - 1]), 0]  # strides 2**(depth-1) ... 2, then the input's size
        ins = [encoder_chs[depth - 1], *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o, norm_layer=norm_layer, interpolation=interpolation)
                                    for i, s, o in zip(ins, skips, decoder_channels))

    def forward(self, size: Sequence[int], levels: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Decode ``levels`` (the maps at strides 2, 4, ..., ``None`` where absent) for an input of ``size``."""
        depth = len(self.blocks)
        x = levels[depth - 1]
        for i, block in enumerate(self.blocks):
            level = depth - 2 - i  # the skip's index in levels; -1: back at the input's resolution
            skip = levels[level] if level >= 0 else None
            if skip is not None:
                target = skip.shape[-2:]
            elif level >= 0:  # no level at this stride (ViT-style stems): smp's empty placeholder's size
                target = (size[0] // 2 ** (level + 1), size[1] // 2 ** (level + 1))
            else:
                target = size
            x = block(x, target, skip)
        return x


class UNetBody(nn.Module):
    """The encoder (a :class:`mhub.FeatureNet`) and the decoder; returns the finest decoder map."""

    def __init__(self, encoder: FeatureNet, decoder: UNetDecoder, depth: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        strides = encoder.feature_info.reduction()
        self.slots = [strides.index(2 ** k) if 2 ** k in strides else None for k in range(1, depth + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        return self.decoder(x.shape[-2:], [features[i] if i is not None else None for i in self.slots])


def encoder_levels(model: nn.Module, depth: int, replace: dict[int, tuple[str, int]] | None = None,
                   name: str = "backbone") -> list[dict[str, Any]]:
    """The feature points a UNet of ``depth`` levels taps: one per stride 2 ... ``2**depth``.

    The backbone's declared levels (the last one at each stride), with ``replace`` substituting
    ``{stride: (module, channels)}``. Stride 2 may be missing (its skip is then empty); stride 1 is not used.

    Raises:
        FeatureError: the backbone declares no feature points, or none at one of the strides 4 ... ``2**depth``.
    """
    by_stride = {point["reduction"]: point for point in declared_features(model)}
    for stride, (module, channels) in (replace or {}).items():
        by_stride[stride] = {"module": module, "num_chs": channels, "reduction": stride}
    strides = [2 ** k for k in range(1, depth + 1)]
    missing = [s for s in strides[1:] if s not in by_stride]
    if missing:
        raise FeatureError(f"a UNet of depth {depth} needs feature levels at strides {', '.join(map(str, strides))}; "
                           f"{name} declares strides {sorted(by_stride)} (no {', '.join(map(str, missing))})")
    return [{key: value for key, value in by_stride[s].items() if key != "index"} for s in strides if s in by_stride]


def unet(backbone: str | nn.Module, *, num_classes: int = 1, in_chans: int = 3,
         decoder_channels: Sequence[int] = configs.DECODER_CHANNELS, decoder_norm: bool = True,
         interpolation: str = "nearest", encoder_pretrained: bool = False,
         encoder_kwargs: dict[str, Any] | None = None) -> BackboneClassifier:
    """Build a UNet on ``backbone``.

    Args:
        backbone: a registered architecture (``"resnet34"``) or weight set (``"resnet34.tv_in1k"``: its weights
            are loaded), or a built mhub model that declares feature points.
        num_classes: channels of the output mask (0: the decoder's last map comes out).
        in_chans: input channels (the backbone's first convolution is adapted when its weights are loaded);
            only for a backbone given by name, as are ``encoder_pretrained`` and ``encoder_kwargs``.
        decoder_channels: output channels of the decoder blocks, coarsest first; their count (1 to 5) is the
            depth: the encoder runs down to stride ``2**depth``.
        decoder_norm: BatchNorm after each decoder convolution (smp's ``decoder_use_norm``).
        interpolation: upsampling mode of the decoder (smp's ``decoder_interpolation``).
        encoder_pretrained: load the backbone's default weights through the hub.
        encoder_kwargs: passed to ``mhub.create`` for the backbone (e.g. ``drop_path_rate``).

    Returns:
        A :class:`mhub.BackboneClassifier` (layout in the module docstring).

    Raises:
        UNetConfigError: a bad depth or interpolation mode; ``in_chans``, ``encoder_pretrained`` or
            ``encoder_kwargs`` given with a built backbone (which is used as it is).
        FeatureError: a backbone without feature levels at the strides the depth needs.
    """
    depth = len(decoder_channels)
    if not 1 <= depth <= 5:
        raise UNetConfigError(f"decoder_channels gives the depth: 1 to 5 blocks, got {len(decoder_channels)}")
    if interpolation not in INTERPOLATIONS:
        raise UNetConfigError(f"unknown interpolation {interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
    if isinstance(backbone, str):
        label = backbone
        replace = configs.by_backbone(mhub.get_registry().arch(backbone).name)
        pretrained = encoder_pretrained or "." in backbone
        backbone = mhub.create(backbone, pretrained=pretrained, in_chans=in_chans, **(encoder_kwargs or {}))
    else:
        ignored = [f"{name}={value!r}" for name, value, default in (
            ("in_chans", in_chans, 3), ("encoder_pretrained", encoder_pretrained, False),
            ("encoder_kwargs", encoder_kwargs or None, None)) if value != default]
        if ignored:
            options = "that option" if len(ignored) == 1 else "those options"
            raise UNetConfigError(f"{', '.join(ignored)} cannot apply to a built backbone ({type(backbone).__name__}), "
                                  f"which is used as it is: build it with {options}, or give the backbone by name")
        label, replace = type(backbone).__name__, {}
    levels = encoder_levels(backbone, depth, replace, label)
    encoder = FeatureNet(backbone, points=levels)
    by_stride = {info["reduction"]: info["num_chs"] for info in encoder.feature_info}
    decoder = UNetDecoder([by_stride.get(2 ** k, 0) for k in range(1, depth + 1)], list(decoder_channels),
                          norm_layer=nn.BatchNorm2d if decoder_norm else None, interpolation=interpolation)
    head = nn.Sequential(OrderedDict(conv=nn.Conv2d(decoder_channels[-1], num_classes, 3, padding=1))) \
        if num_classes else nn.Identity()
    feature_info = [{**level, "module": f"backbone.encoder.{level['module']}"} for level in levels]
    model = BackboneClassifier(UNetBody(encoder, decoder, depth), head, feature_info=feature_info)
    _init_weights(model.backbone.decoder, model.classifier)
    return model


def _init_weights(decoder: nn.Module, head: nn.Module) -> None:
    # smp's scheme: He-uniform (fan-in) decoder convolutions, unit norms; Xavier-uniform head; zero biases
    for module in decoder.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    for module in head.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


# One module-level builder per registered name, so "mhub_unet.model:<name>" resolves lazily.
for _name, (_backbone, *_) in configs.UNETS.items():
    globals()[_name] = registry_builder(_name, unet, {"backbone": _backbone})
del _name, _backbone


# -- high level ----------------------------------------------------------------------------------------------
def UNet(backbone: str | nn.Module | None = None, *, num_classes: int = 1, in_chans: int = 3,
         decoder_channels: Sequence[int] = configs.DECODER_CHANNELS, encoder_pretrained: bool = False,
         **kwargs: Any) -> BackboneClassifier:
    """A UNet on ``backbone``, e.g. ``UNet(backbone="resnet34", num_classes=3)``.

    Args:
        backbone: a registered architecture that declares feature points, a weight set of one
            (``"resnet34.tv_in1k"``: its ImageNet weights are loaded), or a built model (required).
        num_classes: channels of the output mask.
        in_chans: input channels.
        decoder_channels: output channels of the decoder blocks, coarsest first (their count is the depth).
        encoder_pretrained: load the backbone's default weights through the hub.
        **kwargs: options of :func:`unet` (``decoder_norm``, ``interpolation``, ``encoder_kwargs``).

    Raises:
        UNetConfigError: no backbone.
    """
    if backbone is None:
        raise UNetConfigError("UNet has no default backbone; give one, e.g. UNet(backbone='resnet34'); registered: "
                              + ", ".join(sorted(row[0] for row in configs.UNETS.values())))
    return unet(backbone, num_classes=num_classes, in_chans=in_chans, decoder_channels=decoder_channels,
                encoder_pretrained=encoder_pretrained, **kwargs)
