"""TinyNet against its upstream implementation: the tests every family plugin needs.

Run with the plugin installed: ``pip install -e . && pytest tests``.
"""

import pytest
import torch

import mhub
from mhub_example.convert import from_tinyref
from mhub_example.model import TinyNet
from mhub_example.upstream import build as build_upstream


def trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    """Random BatchNorm statistics, so every buffer changes the output (fresh ones are 0 and 1)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_is_upstreams_and_the_registered_one():
    # `num_params` counts the ImageNet head; a bare mhub.create("tinynet") gets the default weights' 10 classes.
    upstream = build_upstream("tinynet", num_classes=1000, in_chans=3)
    ours = mhub.create("tinynet", num_classes=1000)
    assert parameters(ours) == parameters(upstream) == mhub.get_registry().arch("tinynet").num_params


def test_the_high_level_constructor_builds_a_registered_size_and_has_no_default():
    assert parameters(TinyNet("tiny", num_classes=1000)) == mhub.get_registry().arch("tinynet").num_params
    with pytest.raises(mhub.ConfigError, match="TinyNet has no default configuration; give a size: 'tiny'"):
        TinyNet()


@pytest.mark.parametrize("num_classes, in_chans", [(10, 3), (7, 1)])
def test_converted_upstream_weights_compute_what_upstream_computes(num_classes, in_chans):
    torch.manual_seed(0)
    upstream = trained_looking(build_upstream("tinynet", num_classes=num_classes, in_chans=in_chans))
    ours = mhub.create("tinynet", num_classes=num_classes, in_chans=in_chans).eval()
    ours.load_state_dict(from_tinyref(upstream.state_dict()), strict=True)
    x = torch.randn(2, in_chans, 32, 32)
    with torch.no_grad():
        expected, actual = upstream(x), ours(x)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * max(1.0, expected.abs().max().item()))


def test_registered_prefixes_name_the_first_conv_and_the_classifier():
    arch = mhub.get_registry().arch("tinynet")
    modules = dict(mhub.create("tinynet", num_classes=5, in_chans=2).named_modules())
    assert isinstance(modules[arch.first_conv], torch.nn.Conv2d) and modules[arch.first_conv].in_channels == 2
    assert isinstance(modules[arch.classifier], torch.nn.Linear) and modules[arch.classifier].out_features == 5


def test_backbone_and_classifier_compose_to_the_model():
    model = mhub.create("tinynet", num_classes=4).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        features = mhub.backbone(model)(x)
        assert features.shape == (1, 16, 8, 8)  # stride 4: the stem and the second stage halve it
        torch.testing.assert_close(mhub.classifier(model)(features), model(x))


def test_feature_points_are_the_upstream_stage_outputs():
    # the points model.py declares: mhub.features and create(features_only=True) return these maps
    torch.manual_seed(0)
    upstream = trained_looking(build_upstream("tinynet", num_classes=10, in_chans=3))
    ours = mhub.create("tinynet", num_classes=10).eval()
    ours.load_state_dict(from_tinyref(upstream.state_dict()))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        levels = mhub.features(ours)(x)
        expected = torch.relu(upstream.bn1(upstream.conv1(x)))
        for level, stage in zip(levels, upstream.stages):
            for block in stage:
                expected = block(expected)
            torch.testing.assert_close(level, expected, rtol=0, atol=1e-5 * max(1.0, expected.abs().max().item()))
    assert mhub.features(ours).feature_info.reduction() == [32 // level.shape[-1] for level in levels] == [2, 4]
