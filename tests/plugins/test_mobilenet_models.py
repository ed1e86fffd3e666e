"""The MobileNet/MNASNet/EfficientNet families against torchvision and timm.

Parameter counts are checked against torchvision's published ``num_params`` (data/upstream-weights.json) and timm's
models; outputs against randomly initialised torchvision/timm models after conversion (BatchNorm statistics
randomised too, so epsilon, order and padding mistakes show).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import count, on_meta, published_torchvision_params, randomly_filled
from parity import assert_outputs_close, input_sizes, randomise_model
from mhub_mobilenet import configs
from mhub_mobilenet.convert import LayoutMismatch, efficientnet_pytorch_layout, timm_layout, torchvision_layout
from mhub_mobilenet.model import irnet

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

TORCHVISION = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0",
               "mnasnet1_3", *(f"efficientnet_b{i}" for i in range(8)), "efficientnet_v2_s", "efficientnet_v2_m",
               "efficientnet_v2_l"]
BIG = {"efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l"}
TIMM_NAME = {"mobilenet_v1": "mobilenetv1_100"}  # our name -> timm's, where they differ
TIMM_ONLY = [name for name in configs.ARCHS if name not in TORCHVISION and name != "mnasnet0_5_v1stem"]
# timm-only models small enough for a numerical check on 2 cores; the rest are checked key by key and shape by
# shape on the meta device (same config rows, so the same code paths).
TIMM_NUMERIC = [name for name in TIMM_ONLY if configs.ARCHS[name][-1] < 15_000_000]


def build(name: str, **kwargs) -> nn.Module:
    return irnet(**configs.arch_defaults(name), **kwargs)


def assert_parity(ref: nn.Module, ours_name: str, converter, default_size=(64, 64)) -> None:
    """Outputs equal at the input size of each of ``ours_name``'s weight sets (``default_size`` where it has none)."""
    with on_meta():
        ours = build(ours_name)
    ours.load_state_dict(converter(ref.state_dict()), strict=True, assign=True)
    ours.eval()
    for size in input_sizes(ours_name, default_size):
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected, actual = ref(x), ours(x)
        assert_outputs_close(actual, expected, what=f"{ours_name} at {size}")


# -- parameter counts ---------------------------------------------------------------------------------------

def test_every_registered_architecture_has_the_counted_parameters():
    for name, row in configs.ARCHS.items():
        with torch.device("meta"):
            model = build(name)
        assert count(model) == row[-1], name


@pytest.mark.parametrize("name", TORCHVISION)
def test_parameters_equal_torchvision_published_num_params(name):
    assert configs.ARCHS[name][-1] == published_torchvision_params()[name]


@pytest.mark.parametrize("name", TIMM_ONLY)
def test_parameters_equal_timm(name):
    with torch.device("meta"):
        reference = timm.create_model(TIMM_NAME.get(name, name))
    assert configs.ARCHS[name][-1] == count(reference)


# -- outputs after conversion -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in TORCHVISION])
def test_output_parity_with_torchvision(name):
    assert_parity(randomly_filled(getattr(torchvision.models, name)), name, torchvision_layout)


def test_mnasnet0_5_v1stem_matches_torchvision_version_1_layout():
    # torchvision rebuilds the stem of MNASNet(0.5) when it loads a version-1 checkpoint (its mnasnet0_5 weights)
    ref = torchvision.models.mnasnet0_5()
    with pytest.warns(UserWarning):
        ref._load_from_state_dict({}, "", {"version": 1}, False, [], [], [])
    assert configs.ARCHS["mnasnet0_5_v1stem"][-1] == count(ref)
    assert_parity(randomise_model(ref), "mnasnet0_5_v1stem", torchvision_layout)


@pytest.mark.parametrize("name", TIMM_NUMERIC)
def test_output_parity_with_timm(name):
    ref = randomly_filled(lambda: timm.create_model(TIMM_NAME.get(name, name)))
    # without weights of its own, an odd, non-square size makes TensorFlow SAME padding asymmetric in both
    # directions (tf_efficientnetv2_b3 keeps that covered)
    assert_parity(ref, name, timm_layout, default_size=(65, 71))


@pytest.mark.parametrize("name", sorted(set(TIMM_ONLY) - set(TIMM_NUMERIC)))
def test_timm_conversion_fits_large_models(name):
    with torch.device("meta"):
        ref = timm.create_model(name)
        ours = build(name)
    shapes = {k: tuple(v.shape) for k, v in timm_layout(ref.state_dict()).items()}
    assert shapes == {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def test_tf_variants_use_same_padding_and_tf_batchnorm():
    model = build("tf_efficientnet_b0")
    from mhub.layers import Conv2dSame

    assert isinstance(model.backbone.stem.conv, Conv2dSame)
    assert model.backbone.stem.norm.eps == pytest.approx(1e-3)
    assert not isinstance(build("efficientnet_b0").backbone.stem.conv, Conv2dSame)


def test_efficientnet_lite_has_no_squeeze_excite_relu6_and_unscaled_stem_and_head():
    model = build("efficientnet_lite4")
    assert not any("se" in name.split(".") for name, _ in model.named_modules())
    assert model.backbone.stem.conv.out_channels == 32 and model.backbone.head.conv.out_channels == 1280
    assert isinstance(model.backbone.stem.act, nn.ReLU6)
    assert build("efficientnet_b4").backbone.stem.conv.out_channels == 48  # EfficientNet proper scales them


def test_stochastic_depth_defaults_follow_torchvision():
    ours = [m.p for m in build("efficientnet_b0").modules() if type(m).__name__ == "StochasticDepth"]
    theirs = [m.p for m in torchvision.models.efficientnet_b0().modules()
              if type(m).__name__ == "StochasticDepth" and m.p > 0]
    residual = [blk.stochastic_depth.p for blk in torchvision.models.efficientnet_b0().modules()
                if hasattr(blk, "use_res_connect") and blk.use_res_connect and blk.stochastic_depth.p > 0]
    assert theirs and ours == pytest.approx(residual)
    assert not any(type(m).__name__ == "StochasticDepth" for m in build("efficientnet_b0", drop_path_rate=0).modules())


def test_mobilenet_v1_head_has_no_hidden_dense_layer():
    model = build("mobilenet_v1")
    assert [type(m).__name__ for m in model.classifier] == ["AdaptiveAvgPool2d", "Flatten", "Dropout", "Linear"]
    assert "head" not in dict(model.backbone.named_children())


def test_mobilenet_v3_first_conv_pads_by_one():
    assert build("mobilenet_v3_large").backbone.stem.conv.padding == (1, 1)


# -- configs and errors ---------------------------------------------------------------------------------------

def test_unknown_config_is_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown config 'efficientnet_v3'.*valid configs: .*efficientnet_v2_s"):
        irnet("efficientnet_v3")


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="unknown config option.*'depth'"):
        irnet("mobilenet_v2", depth=2)


def test_bad_row_is_rejected():
    with pytest.raises(ValueError, match="bad config row"):
        configs.NetConfig((("inverted", 3, 6, 24, 2, 2, 0, None),), stem=32, act="relu")


def test_width_and_depth_multipliers_scale_widths_and_repeats():
    model = irnet("efficientnet", width_mult=2.0, depth_mult=2.0, num_classes=10)
    assert len(model.backbone.blocks) == 2 * 16
    assert model.backbone.stem.conv.out_channels == 64 and model.classifier.fc.out_features == 10


def test_in_chans_and_forward_shapes():
    model = irnet("mobilenet_v3_small", in_chans=1, num_classes=7).eval()
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 7)
    assert model.backbone(torch.randn(1, 1, 64, 64)).shape == (1, 576, 2, 2)  # stride 32


# -- high-level constructors ----------------------------------------------------------------------------------

def test_constructors_have_no_default_configuration():
    from mhub_mobilenet import model

    for constructor in (model.MobileNetv1, model.MobileNetv2, model.MobileNetv3, model.MNASNet, model.EfficientNet,
                        model.EfficientNetv2, model.EfficientNetLite):
        with pytest.raises(TypeError):
            constructor()


def test_constructors_pick_registered_architectures():
    from mhub_mobilenet.model import EfficientNet, EfficientNetLite, EfficientNetv2, MNASNet, MobileNetv3

    with torch.device("meta"):
        assert count(EfficientNet("b1")) == 7794184
        assert count(MobileNetv3("small")) == 2542856
        assert count(EfficientNetv2("s")) == 21458488
        assert count(MNASNet(0.75)) == 3170208
        assert count(EfficientNetLite("lite0", tf_padding=True)) == 4652008
        assert EfficientNet("b0", num_classes=10, in_chans=1).backbone.stem.conv.in_channels == 1
        assert count(MNASNet(0.35)) > 0  # not registered: built from the table
    with pytest.raises(ValueError, match="valid: 'large', 'small'"):
        MobileNetv3("medium")
    with pytest.raises(ValueError, match="pretrained weights exist only"):
        MNASNet(0.35, pretrained=True)


# -- converters ---------------------------------------------------------------------------------------------

def test_converters_reject_a_foreign_layout_with_the_key_they_missed():
    state = torchvision.models.mobilenet_v2().state_dict()
    with pytest.raises(LayoutMismatch, match="missing key 'conv_stem.weight'"):
        timm_layout(state)
    with pytest.raises(LayoutMismatch, match="_conv_stem"):
        efficientnet_pytorch_layout(state)


def test_converters_reject_unexpected_keys():
    state = dict(torchvision.models.mobilenet_v3_small().state_dict())
    state["features.0.extra"] = torch.zeros(1)
    with pytest.raises(LayoutMismatch, match="unexpected key.*features.0.extra"):
        torchvision_layout(state)
