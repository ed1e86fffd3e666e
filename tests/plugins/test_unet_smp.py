"""The UNet plugin against segmentation_models_pytorch: smp's Unet converts and computes the same masks.

Each smp model is built with random weights (``encoder_weights=None``) and randomised BatchNorm statistics,
converted by the registered ``smp.unet`` key map, and loaded strictly into the mhub model of the same name.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import randomise_batchnorm

import mhub
from mhub import ConversionError

smp = pytest.importorskip("segmentation_models_pytorch")
SIZE = (128, 160)


def smp_unet(encoder: str, classes: int = 3, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # smp's deprecation notices
        return randomise_batchnorm(smp.Unet(encoder, encoder_weights=None, classes=classes, **kwargs), seed)


def converted(name: str, reference, **kwargs):
    model = mhub.create(name, num_classes=reference.segmentation_head[0].out_channels, **kwargs)
    function = mhub.get_registry().converter("smp.unet").function
    from mhub._lazy import import_string

    model.load_state_dict(import_string(function)(reference.state_dict()))
    return model.eval()


def assert_same_masks(ours, reference, size=SIZE, in_chans: int = 3):
    x = torch.randn(2, in_chans, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, expected = ours(x), reference(x)
    assert got.shape == expected.shape == (2, reference.segmentation_head[0].out_channels, *size)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * max(1.0, expected.abs().max().item()))


@pytest.mark.parametrize("encoder, name", [
    ("resnet34", "unet_resnet34"),
    ("efficientnet-b0", "unet_tf_efficientnet_b0"),  # lukemelas' port: TensorFlow SAME padding
    ("timm-efficientnet-b0", "unet_efficientnet_b0"),
    ("mobilenet_v2", "unet_mobilenet_v2"),
    ("tu-convnext_tiny", "unet_convnext_tiny"),  # timm's features_only levels: no stride-2 skip
])
def test_smp_unet_converts_and_computes_the_same_masks(encoder, name):
    reference = smp_unet(encoder)
    assert_same_masks(converted(name, reference), reference)


def test_sides_that_are_not_multiples_of_32_are_handled_as_smp_does():
    reference = smp_unet("resnet34", classes=2)
    assert_same_masks(converted("unet_resnet34", reference), reference, size=(100, 70))


def test_decoder_options_and_input_channels_convert():
    reference = smp_unet("resnet18", classes=4, in_channels=1, decoder_channels=(64, 48, 32, 16, 8),
                         decoder_use_norm=False, decoder_interpolation="bilinear")
    ours = converted("unet_resnet18", reference, in_chans=1, decoder_channels=(64, 48, 32, 16, 8),
                     decoder_norm=False, interpolation="bilinear")
    assert_same_masks(ours, reference, size=(64, 96), in_chans=1)


@pytest.mark.parametrize("encoder, kwargs, message", [
    ("efficientnet-b1", {}, "pad for their training size"),
    ("resnet18", {"decoder_attention_type": "scse"}, "no place in the mhub UNet"),
    ("resnet18", {"aux_params": {"classes": 2}}, "no place in the mhub UNet"),
    ("resnet18", {"encoder_depth": 4, "decoder_channels": (64, 32, 16, 8)}, "encoder_depth=5"),
])
def test_what_has_no_place_in_the_mhub_layout_is_refused(encoder, kwargs, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = smp.Unet(encoder, encoder_weights=None, **kwargs).state_dict()
    from mhub_unet.convert import from_smp

    with pytest.raises(ConversionError, match=message):
        from_smp(state)


def test_the_toolchain_finds_the_key_map_for_from_smp():
    # what `mhub convert SMP.pth --model unet_resnet18 --from smp --model-arg decoder_channels=64,32,16,16,8` runs
    from mhub_tools.convert import convert_state

    reference = smp_unet("resnet18", classes=2, decoder_channels=(64, 32, 16, 16, 8))
    arch = mhub.get_registry().arch_for("unet_resnet18", decoder_channels=[64, 32, 16, 16, 8])
    match = convert_state(arch, reference.state_dict(), source="smp")
    assert match.converter == "smp.unet@1"
    ours = mhub.create("unet_resnet18", num_classes=2, decoder_channels=(64, 32, 16, 16, 8))
    ours.load_state_dict(match.state)
    assert_same_masks(ours.eval(), reference, size=(64, 64))
