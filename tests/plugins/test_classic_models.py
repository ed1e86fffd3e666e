"""The classic family against torchvision and timm: parameter counts, converted outputs, backbone split.

Outputs are compared at 224 px, the crop size of every torchvision weight set of these architectures, with
one torchvision model per architecture shared by the tests of this module (VGG-19 alone is 143M parameters).
"""

from __future__ import annotations

import pytest
import torch
from classic_reference import ALL, on_meta, ours_loaded, timm_model, torchvision_model, vgg_head
from conftest import count, upstream_facts
from parity import assert_outputs_close
from torch import nn

import mhub
from mhub_classic import configs, convert

torchvision = pytest.importorskip("torchvision")
SIZE = 224
# Output stride of the backbone at 224 px: 7x7 maps, except AlexNet (6x6 after its third 3x3/2 pool) and
# SqueezeNet (13x13: three pools after the strided stem).
FEATURE_SIDE = {"alexnet": 6, "squeezenet1_0": 13, "squeezenet1_1": 13}


@pytest.fixture(scope="module", autouse=True)
def _release_the_shared_vgg_head():
    yield
    vgg_head.cache_clear()  # 500 MB the rest of this worker's tests do not need


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_equals_torchvision_published(name):
    published = {f["num_params"] for f in upstream_facts() if f["source"] == "torchvision" and f["model"] == name}
    assert len(published) == 1
    with on_meta():
        model = mhub.create(name)
    assert count(model) == published.pop() == mhub.get_registry().arch(name).num_params


@pytest.fixture(scope="module", params=ALL)
def converted(request):
    """(name, torchvision model, our model holding the converted weights), one architecture at a time."""
    reference = torchvision_model(request.param)
    ours = ours_loaded(request.param, convert.from_torchvision(reference.state_dict()))
    return request.param, reference, ours


def test_converted_torchvision_weights_give_the_same_outputs_through_backbone_then_classifier(converted):
    name, reference, ours = converted
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
        features = mhub.backbone(ours)(x)
        got = mhub.classifier(ours)(features)
    side = FEATURE_SIDE.get(name, SIZE // 32)
    assert features.shape[-2:] == (side, side)
    assert got.shape == expected.shape == (1, 1000)
    assert_outputs_close(got, expected)


def test_every_batchnorm_sits_in_a_conv_norm_unit(converted):
    _, _, ours = converted
    for name, module in ours.named_modules():
        if isinstance(module, nn.BatchNorm2d) and name != "backbone.norm":  # DenseNet's final norm has no conv
            unit = list(ours.get_submodule(name.rpartition(".")[0])._modules)
            assert name.endswith(".norm") and unit in (["conv", "norm", "act"], ["norm", "act", "conv"]), name


@pytest.mark.parametrize("name, timm_name", [("densenet121", "densenet121"), ("vgg11_bn", "vgg11_bn")])
def test_converted_timm_weights_give_the_same_outputs(name, timm_name):
    pytest.importorskip("timm")
    reference = timm_model(timm_name)
    ours = ours_loaded(name, convert.from_timm(reference.state_dict()))
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(x)
        assert_outputs_close(ours(x), expected)


# -- GoogLeNet -------------------------------------------------------------------------------------------------
def test_googlenet_auxiliary_heads_match_torchvision_in_training():
    from mhub_classic.googlenet import GoogLeNetOutputs

    reference = torchvision_model("googlenet", aux_logits=True, dropout=0.0, dropout_aux=0.0)
    state = convert.from_torchvision(reference.state_dict(), aux_logits=True)
    ours = ours_loaded("googlenet", state, aux_logits=True, dropout=0.0, aux_dropout=0.0)
    assert not any(key.startswith("aux") for key in convert.from_torchvision(reference.state_dict()))
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    reference.train(), ours.train()  # BatchNorm on batch statistics, auxiliary heads active
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert isinstance(got, GoogLeNetOutputs) and got._fields == expected._fields
    for field in expected._fields:
        assert_outputs_close(getattr(got, field), getattr(expected, field))
    with torch.no_grad():
        assert ours.eval()(x[:1]).shape == (1, 1000)  # eval mode: logits only, as torchvision


def test_googlenet_has_no_auxiliary_heads_unless_asked():
    from mhub_classic.model import GoogLeNet

    with on_meta():
        plain, with_aux = mhub.create("googlenet"), GoogLeNet(aux_logits=True, num_classes=5)
    assert not plain.aux_logits and not any(k.startswith("aux") for k in plain.state_dict())
    assert with_aux.aux_logits and with_aux.aux1.fc.out_features == 5 and with_aux.aux2.conv.conv.in_channels == 528
    with pytest.raises(mhub.ConfigError, match="auxiliary classifiers need num_classes >= 1, got 0"), on_meta():
        GoogLeNet(aux_logits=True, num_classes=0)  # as googlenet()'s docstring says


# -- high-level constructors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda m: m.VGG(), "VGG has no default configuration; give a depth: 11, 13, 16, 19"),
    (lambda m: m.DenseNet(), "DenseNet has no default configuration; give a depth: 121, 161, 169, 201"),
    (lambda m: m.SqueezeNet(), "SqueezeNet has no default configuration; give a version: '1_0', '1_1'"),
    (lambda m: m.VGG(15), "VGG has no configuration 15; valid: 11, 13, 16, 19"),
])
def test_high_level_constructors_without_a_configuration_are_one_line_errors(call, message):
    from mhub_classic import model

    with pytest.raises(configs.ConfigError) as error:
        call(model)
    assert str(error.value) == message and isinstance(error.value, mhub.MhubError)


def test_high_level_constructors_build_the_registered_architectures():
    from mhub_classic import AlexNet, DenseNet, GoogLeNet, SqueezeNet, VGG

    built = {"vgg16_bn": lambda: VGG(16, batchnorm=True), "vgg19": lambda: VGG(19),
             "squeezenet1_1": lambda: SqueezeNet("1_1"), "densenet169": lambda: DenseNet(169),
             "alexnet": AlexNet, "googlenet": GoogLeNet}
    for name, build in built.items():
        with on_meta():
            model, expected = build(), mhub.create(name)
        assert {k: v.shape for k, v in model.state_dict().items()} == \
            {k: v.shape for k, v in expected.state_dict().items()}, name
    with on_meta():
        assert VGG(11, num_classes=10, in_chans=1).classifier.fc.out_features == 10


# -- mid-level options ------------------------------------------------------------------------------------------
def test_vgg_from_a_config_table_with_a_smaller_head():
    from mhub_classic.vgg import vgg

    model = vgg(((8, 1), (16, 2)), batchnorm=True, hidden=(32,), pool_size=2, num_classes=3).eval()
    assert [len(stage) for stage in model.backbone.stages] == [2, 3]  # units + pool
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    headless = vgg(11, hidden=(), num_classes=0)
    assert [name for name, _ in headless.classifier.named_children()] == ["pool", "flatten"]


def test_densenet_memory_efficient_checkpoints_and_gives_the_same_gradients(monkeypatch):
    from mhub_classic import densenet as module

    calls = []
    real = module.checkpoint
    monkeypatch.setattr(module, "checkpoint", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    torch.manual_seed(0)
    plain = module.densenet(8, (2, 3), 16, num_classes=4)
    efficient = module.densenet(8, (2, 3), 16, num_classes=4, memory_efficient=True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for model in (plain, efficient):
        model(x).square().sum().backward()
    assert len(calls) == 5  # one per dense layer, only when memory_efficient
    for (name, a), b in zip(plain.named_parameters(), efficient.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_densenet_drop_rate_drops_new_channels_in_training_only():
    from mhub_classic.densenet import densenet

    model = densenet(8, (2,), 16, num_classes=0, drop_rate=0.5)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# -- converters ---------------------------------------------------------------------------------------------------
def test_converter_lists_keys_that_have_no_place():
    state = torchvision_model("squeezenet1_1").state_dict()
    state["features.3.squeeze.extra"] = torch.zeros(1)
    state["classifier.4.weight"] = torch.zeros(1)
    unplaced = r"2 key\(s\) of the torchvision SqueezeNet checkpoint have no place in mhub's layout: "
    with pytest.raises(mhub.ConversionError, match=unplaced + "features.3.squeeze.extra, classifier.4.weight"):
        convert.from_torchvision(state)
    with pytest.raises(mhub.ConversionError, match="not a torchvision AlexNet, VGG"):
        convert.from_torchvision({"conv1.weight": torch.zeros(1)})


def test_densenet_converter_reads_the_old_dotted_key_spelling_of_torchvisions_checkpoints():
    state = torchvision_model("densenet121").state_dict()
    dotted = {key.replace("denselayer1.norm1.", "denselayer1.norm.1.").replace("denselayer1.conv2.",
                                                                              "denselayer1.conv.2."): value
              for key, value in state.items()}
    assert dotted.keys() != state.keys()
    assert convert.from_torchvision(dotted).keys() == convert.from_torchvision(state).keys()


def test_features_converter_keeps_the_backbone_only():
    from mhub_classic.vgg import vgg

    reference = torchvision_model("vgg11")
    features = convert.features_from_torchvision(reference.state_dict())
    assert features and all(key.startswith("backbone.") for key in features)
    with on_meta():
        headless = vgg(11, hidden=(), num_classes=0)
    headless.load_state_dict(features, strict=True, assign=True)
