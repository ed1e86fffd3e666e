"""The ResNet family against torchvision and timm: parameter counts, converted outputs, backbone split."""

from __future__ import annotations

import pytest
import torch
from conftest import count, on_meta, upstream_facts
from parity import assert_outputs_close, input_sizes
from resnet_reference import reference_model
from torch import nn

import mhub
from mhub_resnet import configs, model as resnet_model

ALL = list(configs.MODELS)
TORCHVISION = [n for n in ALL if configs.MODELS[n][2] == "torchvision"]
TIMM = [n for n in ALL if n not in TORCHVISION]


@pytest.mark.parametrize("name", TORCHVISION)
def test_parameter_count_equals_torchvision_published(name):
    published = {f["num_params"] for f in upstream_facts() if f["source"] == "torchvision" and f["model"] == name}
    assert len(published) == 1
    assert count(mhub.create(name)) == published.pop()
    assert mhub.get_registry().arch(name).num_params == count(mhub.create(name))


@pytest.mark.parametrize("name", TIMM)
def test_parameter_count_equals_timm(name):
    timm = pytest.importorskip("timm")
    ours = count(mhub.create(name))
    assert ours == count(timm.create_model(name))
    # timm's results table publishes the count rounded to 10k parameters, where it lists the model.
    published = [f["timm_results_imagenet"]["param_count_m"] for f in upstream_facts()
                 if f["model"] == name and f.get("timm_results_imagenet", {}).get("param_count_m")]
    for millions in published:
        assert round(ours / 1e6, 2) == pytest.approx(millions)


@pytest.mark.parametrize("name", ALL)
def test_converted_reference_weights_give_the_same_outputs(name):
    """At the input size of each of the architecture's weight sets (64 px where it has none)."""
    pytest.importorskip("timm")
    reference, converter_name = reference_model(name)
    converter = mhub.get_registry().converter(converter_name)
    from mhub._lazy import import_string

    state = import_string(converter.function)(reference.state_dict())
    with on_meta():  # no random init to pay for: every tensor comes from the reference
        ours = mhub.create(name)
    ours.load_state_dict(state, strict=True, assign=True)
    ours.eval()
    for size in input_sizes(name):
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected, got = reference(x), ours(x)
        assert got.shape == (1, 1000)
        assert_outputs_close(got, expected, what=f"{name} at {size}")


@pytest.mark.parametrize("name", ALL)
def test_backbone_then_classifier_is_the_model_and_has_stride_32(name):
    model = mhub.create(name, num_classes=7, in_chans=1).eval()
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        features = mhub.backbone(model)(x)
        assert features.shape[-2:] == (64 // 32, 96 // 32)
        split = nn.Sequential(mhub.backbone(model), mhub.classifier(model))(x)
        torch.testing.assert_close(split, model(x), rtol=0, atol=0)
    assert split.shape == (1, 7)
    state = model.state_dict()
    spec = mhub.get_registry().arch(name)
    assert state[spec.first_conv + ".weight"].shape[1] == 1
    assert state[spec.classifier + ".weight"].shape[0] == 7


# -- high level ------------------------------------------------------------------------------------
@pytest.mark.parametrize("constructor", [resnet_model.ResNet, resnet_model.ResNeXt, resnet_model.WideResNet,
                                         resnet_model.SEResNet, resnet_model.SEResNeXt, resnet_model.Res2Net,
                                         resnet_model.Res2NeXt])
def test_high_level_constructors_have_no_default_configuration(constructor):
    with pytest.raises(resnet_model.ResNetConfigError, match="no default configuration") as info:
        constructor()
    assert isinstance(info.value, mhub.MhubError) and isinstance(info.value, ValueError)
    with pytest.raises(resnet_model.ResNetConfigError, match="valid"):
        constructor(7)


@pytest.mark.parametrize("call,name", [
    (lambda: resnet_model.ResNet(18), "resnet18"),
    (lambda: resnet_model.ResNeXt(101, cardinality=32, base_width=8), "resnext101_32x8d"),
    (lambda: resnet_model.WideResNet(50), "wide_resnet50_2"),
    (lambda: resnet_model.SEResNet(50), "seresnet50"),
    (lambda: resnet_model.SEResNeXt(50), "seresnext50_32x4d"),
    (lambda: resnet_model.Res2Net(50, base_width=48, scale=2), "res2net50_48w_2s"),
    (lambda: resnet_model.Res2NeXt(50), "res2next50"),
])
def test_high_level_constructors_build_the_registered_architecture(call, name):
    ours = {k: v.shape for k, v in call().state_dict().items()}
    assert ours == {k: v.shape for k, v in mhub.create(name).state_dict().items()}


def test_high_level_in_chans_and_num_classes():
    model = resnet_model.ResNet(34, in_chans=4, num_classes=5)
    assert isinstance(model, mhub.BackboneClassifier)
    assert model.eval()(torch.randn(1, 4, 32, 32)).shape == (1, 5)


def test_unknown_registry_config_lists_the_valid_ones():
    with pytest.raises(resnet_model.ResNetConfigError, match="resnet50"):
        resnet_model.from_config("resnet51")
