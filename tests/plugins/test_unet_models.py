"""The UNet plugin's models: registered names, the UNet constructor on any backbone with features, errors."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

import mhub
from mhub import FeatureError
from mhub_unet import UNet
from mhub_unet.model import UNetConfigError

REQUIRED = ["unet_resnet18", "unet_resnet34", "unet_resnet50", "unet_mobilenet_v2", "unet_convnext_tiny",
            *(f"unet_efficientnet_b{i}" for i in range(5))]


def test_the_required_encoders_are_registered():
    registry = mhub.get_registry()
    assert set(REQUIRED) <= set(mhub.list_models("unet_*"))
    assert all(registry.arch(name).family == "unet" for name in REQUIRED)


def test_create_gives_masks_of_the_input_size():
    model = mhub.create("unet_resnet34", num_classes=5, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 96)).shape == (2, 5, 64, 96)
    assert model.backbone.encoder.feature_info.channels() == [64, 64, 128, 256, 512]
    assert mhub.classifier(model).conv.out_channels == 5


def test_unet_constructor_equals_the_registered_model():
    torch.manual_seed(0)
    built = UNet(backbone="resnet34", num_classes=3, decoder_channels=(256, 128, 64, 32, 16))
    registered = mhub.create("unet_resnet34", num_classes=3)
    assert {k: v.shape for k, v in built.state_dict().items()} == \
        {k: v.shape for k, v in registered.state_dict().items()}


def test_smp_taps_replace_the_backbone_levels_where_smp_does():
    efficientnet = mhub.create("unet_efficientnet_b3").backbone.encoder.feature_info
    assert efficientnet.module_name()[0] == "backbone.stem" and efficientnet.channels()[0] == 40
    backbone_levels = mhub.create("efficientnet_b3", features_only=True).feature_info.module_name()
    assert efficientnet.module_name()[1:] == backbone_levels[1:]
    mobilenet = mhub.create("unet_mobilenet_v2").backbone.encoder.feature_info
    assert mobilenet.module_name()[-1] == "backbone.head" and mobilenet.channels()[-1] == 1280


def test_any_backbone_with_features_makes_a_unet():
    # VGG's levels start at stride 1, which a UNet's skips do not use (as smp's tu- encoders)
    model = UNet(backbone="vgg11_bn", num_classes=2, decoder_channels=(32, 16, 8)).eval()
    assert model.backbone.encoder.feature_info.reduction() == [2, 4, 8]
    assert model.backbone.encoder.feature_info.module_name() == ["backbone.stages.1.0", "backbone.stages.2.1",
                                                                 "backbone.stages.3.1"]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 56)).shape == (1, 2, 40, 56)


def test_a_shallow_unet_runs_the_encoder_only_as_deep_as_it_needs():
    model = UNet(backbone="resnet18", decoder_channels=(64, 32))
    assert model.backbone.encoder.feature_info.reduction() == [2, 4]
    assert not any(".stages.1." in key for key in model.state_dict())


def test_a_unet_extracts_features_through_its_encoder():
    model = mhub.create("unet_resnet18", num_classes=2).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got = mhub.features(model)(x)
        expected = model.backbone.encoder(x)
    assert [t.shape for t in got] == [t.shape for t in expected]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class OnlyStride16(nn.Module):
    def forward(self, x):
        return x[..., ::16, ::16]


@pytest.mark.parametrize("call, error, message", [
    (lambda: UNet(), UNetConfigError, "no default backbone"),
    (lambda: UNet(backbone="resnet18", decoder_channels=()), UNetConfigError, "1 to 5"),
    (lambda: UNet(backbone="resnet18", decoder_channels=(8,) * 6), UNetConfigError, "1 to 5"),
    (lambda: UNet(backbone="resnet18", interpolation="linear"), UNetConfigError, "interpolation"),
    (lambda: UNet(backbone=mhub.BackboneClassifier(nn.Sequential(OnlyStride16()), nn.Identity(), feature_info=[
        {"module": "backbone.0", "num_chs": 3, "reduction": 16}])), FeatureError, "no 4, 8, 32"),
    (lambda: UNet(backbone="vit_ti_16"), FeatureError, r"declares strides \[16\]"),  # one stride: no U
    (lambda: UNet(backbone="resnet1"), mhub.UnknownModelError, "resnet18"),
])
def test_bad_configurations_are_one_line_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("options, named", [
    ({"in_chans": 1}, "in_chans=1"),
    ({"encoder_pretrained": True}, "encoder_pretrained=True"),
    ({"encoder_kwargs": {"drop_path_rate": 0.1}}, "encoder_kwargs={'drop_path_rate': 0.1}"),
    ({"in_chans": 4, "encoder_pretrained": True}, "in_chans=4, encoder_pretrained=True"),
])
def test_backbone_options_with_a_built_backbone_are_refused_not_ignored(options, named):
    """They used to be dropped silently: a 1-channel UNet that still wanted 3 channels, say."""
    backbone = mhub.create("resnet18")
    with pytest.raises(UNetConfigError) as caught:
        UNet(backbone=backbone, **options)
    message = str(caught.value)
    assert message.startswith(f"{named} cannot apply to a built backbone (BackboneClassifier)") and "\n" not in message
    model = UNet(backbone=backbone, in_chans=3, encoder_pretrained=False, encoder_kwargs={})  # the defaults
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)
