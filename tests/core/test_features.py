"""mhub.features / create(features_only=True): timm's features_only levels, for every family, from one wrapper.

Parity: timm's model of the same architecture (random values, randomised BatchNorm statistics) is converted by
the family's registered key map into ours; timm's own ``features_only`` model gets the same tensors. Both must
give the same levels: count, channels, reductions and values.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from conftest import on_meta, randomise_batchnorm
from torch import nn

import mhub
from mhub import FeatureError
from mhub._factory import build
from mhub._lazy import import_string

timm = pytest.importorskip("timm")
SIZE = (64, 96)  # not square, so a swapped height and width shows


def randomised(factory, seed: int = 0) -> nn.Module:
    """``factory()`` built without its own (slow) initialisation, then random values; eval mode."""
    with on_meta():
        model = factory()
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.zero_()
        for layer in model.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer.weight.normal_(0, layer.weight[0].numel() ** -0.5, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-0.1, 0.1, generator=generator)
    return randomise_batchnorm(model, seed)


def ours_from(name: str, state: dict[str, torch.Tensor], converter: str, **kwargs) -> nn.Module:
    """Our ``name`` holding ``state`` after the registered key map ``converter`` (no initialisation run)."""
    registry = mhub.get_registry()
    with on_meta():
        model = build(registry.arch(name), **kwargs)
    model.load_state_dict(import_string(registry.converter(converter).function)(state), assign=True)
    return model.eval()


def timm_features(name: str, state: dict[str, torch.Tensor], tweak=None, **kwargs) -> nn.Module:
    """timm's ``features_only`` model holding the full model's ``state`` (keys it flattens matched back)."""
    with on_meta():
        model = timm.create_model(name, features_only=True, **kwargs)
    if tweak:
        tweak(model)
    # FeatureListNet flattens module names ("features.0" -> "features_0"); FeatureHookNet nests the model under
    # "body.", FeatureGetterNet under "model."
    by_flat_key = {key.replace(".", "_"): tensor for key, tensor in state.items()}
    unwrapped = {key: next(flat for wrapper in ("", "body.", "model.") if key.startswith(wrapper)
                           and (flat := key[len(wrapper):].replace(".", "_")) in by_flat_key)
                 for key in model.state_dict()}
    model.load_state_dict({key: by_flat_key[flat] for key, flat in unwrapped.items()}, assign=True)
    return model.eval()


def torchvision_batchnorm(model: nn.Module) -> None:
    for module in model.modules():  # torchvision's MobileNetV3 BatchNorm epsilon
        if isinstance(module, nn.BatchNorm2d):
            module.eps = 1e-3


# ours: (timm's name, key map, keyword arguments of both models, adjustment of timm's model, input size)
PARITY = {
    "resnet50": ("resnet50", "timm.resnet", {}, None, SIZE),
    "resnext50_32x4d": ("resnext50_32x4d", "timm.resnet", {}, None, SIZE),
    "efficientnet_b0": ("efficientnet_b0", "timm.efficientnet", {}, None, SIZE),
    # timm's mobilenetv3_large_100 is torchvision's mobilenet_v3_large with BatchNorm epsilon 1e-5
    "mobilenet_v3_large": ("mobilenetv3_large_100", "timm.mobilenet", {}, torchvision_batchnorm, SIZE),
    "densenet121": ("densenet121", "timm.classic", {}, None, SIZE),
    "vgg16_bn": ("vgg16_bn", "timm.classic", {}, None, SIZE),
    "convnext_tiny": ("convnext_tiny", "timm.convnext", {}, None, SIZE),
    "inception_v3": ("inception_v3", "timm.inception", {}, None, (96, 128)),  # unpadded: 64 px ends too small
    "vit_b_16": ("vit_base_patch16_224", "timm.vit", {"img_size": SIZE}, None, SIZE),  # tokens: stride-16 maps
}


@pytest.mark.parametrize("name", PARITY)
def test_levels_and_values_equal_timm_features_only(name):
    timm_name, converter, kwargs, tweak, size = PARITY[name]
    reference = randomised(lambda: timm.create_model(timm_name, **kwargs))
    if tweak:
        tweak(reference)
    state = reference.state_dict()
    ours = mhub.features(ours_from(name, state, converter, **kwargs))
    theirs = timm_features(timm_name, state, tweak, **kwargs)
    del reference
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    assert len(got) == len(expected) == len(ours.feature_info)
    for level, (a, b, info) in enumerate(zip(got, expected, ours.feature_info)):
        assert a.shape == b.shape, level
        assert a.shape[1] == info["num_chs"]
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * max(1.0, b.abs().max().item()))


# -- out_indices -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return randomise_batchnorm(mhub.create("resnet18"))


@pytest.mark.parametrize("out_indices", [(1, -1), (-5, 2), 2, (4,), (0,)])
def test_out_indices_pick_levels_as_timm_does(resnet18, out_indices):
    with on_meta():
        reference = timm.create_model("resnet18", features_only=True, out_indices=out_indices)
    net = mhub.features(resnet18, out_indices)
    assert net.feature_info.channels() == reference.feature_info.channels()
    assert net.feature_info.reduction() == reference.feature_info.reduction()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        everything = mhub.features(resnet18)(x)
        picked = net(x)
    assert [info["index"] for info in net.feature_info] == sorted(i % 5 for i in reference.feature_info.out_indices)
    for tensor, info in zip(picked, net.feature_info):
        torch.testing.assert_close(tensor, everything[info["index"]], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [(5,), (-6,), (1, 1), (), 0, 6, (1.0,)])
def test_bad_out_indices_are_a_one_line_error(resnet18, bad):
    with pytest.raises(FeatureError, match="out_indices"):
        mhub.features(resnet18, bad)


def test_out_indices_without_features_only_is_an_error():
    with pytest.raises(FeatureError, match="features_only"):
        mhub.create("resnet18", out_indices=(1, 2))


# -- the wrapper -----------------------------------------------------------------------------------------
def test_features_share_parameters_and_keep_only_what_the_last_level_needs(resnet18):
    net = mhub.features(resnet18, out_indices=(1,))
    model_state = resnet18.state_dict(keep_vars=True)
    state = net.state_dict(keep_vars=True)
    assert state and all(tensor is model_state[key] for key, tensor in state.items())  # same keys, same tensors
    assert {key.split(".")[2] for key in state if key.startswith("backbone.stages.")} == {"0"}
    assert not any(key.startswith("classifier.") for key in state)
    assert set(mhub.features(resnet18, out_indices=(0,)).state_dict()) == \
        {key for key in model_state if key.startswith("backbone.stem.0.")}


def test_create_features_only_builds_the_extractor():
    net = mhub.create("resnet18", features_only=True, out_indices=(-2, -1), num_classes=10)
    assert isinstance(net, mhub.FeatureNet)
    assert net.feature_info.module_name() == ["backbone.stages.2", "backbone.stages.3"]
    assert net.feature_info.get_dicts(["num_chs", "reduction"]) == [{"num_chs": 256, "reduction": 16},
                                                                     {"num_chs": 512, "reduction": 32}]


class Tokens(nn.Module):
    """A stand-in transformer: a patch projection, then tokens ``(B, 1 + N, C)`` with a class token."""

    def __init__(self, chs: int = 6, patch: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(3, chs, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, chs))
        self.blocks = nn.Sequential(nn.Linear(chs, chs), nn.Linear(chs, chs))

    def forward(self, x):
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return self.blocks(torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1))


class Tripwire(nn.Module):
    def forward(self, x):
        raise AssertionError("ran past the last requested level")


def test_points_inside_a_custom_forward_are_hooked_and_the_run_stops_at_the_last():
    body = Tokens()
    body.blocks[1] = Tripwire()  # runs inside the hooked forward unless the hook on blocks.0 ends the pass
    model = mhub.BackboneClassifier(nn.Sequential(OrderedDict(body=body, after=Tripwire())), Tripwire(),
                                    feature_info=[
                                        {"module": "backbone.body.proj", "num_chs": 6, "reduction": 4},
                                        {"module": "backbone.body.blocks.0", "num_chs": 6, "reduction": 4,
                                         "layout": "NLC", "prefix_tokens": 1}])
    x = torch.randn(2, 3, 8, 12)
    net = mhub.features(model)
    assert net.feature_info[1] == {"module": "backbone.body.blocks.0", "num_chs": 6, "reduction": 4, "index": 1}
    proj, tokens = net(x)
    expected_proj = body.proj(x)
    torch.testing.assert_close(proj, expected_proj)
    inner = body.blocks[0](torch.cat([body.cls.expand(2, -1, -1), expected_proj.flatten(2).transpose(1, 2)], 1))
    torch.testing.assert_close(tokens, inner[:, 1:].reshape(2, 2, 3, 6).permute(0, 3, 1, 2))
    assert not body.blocks[0]._forward_hooks  # hooks live only during a forward pass


def test_channels_last_levels_are_permuted_to_nchw():
    model = mhub.BackboneClassifier(nn.Sequential(nn.Conv2d(3, 4, 2, 2), nn.Identity()), nn.Identity(),
                                    feature_info=[{"module": "backbone.0", "num_chs": 4, "reduction": 2}])
    nhwc = mhub.BackboneClassifier(nn.Sequential(model.backbone[0]), nn.Identity(),
                                   feature_info=[{"module": "backbone.0", "num_chs": 4, "reduction": 2,
                                                  "layout": "NHWC"}])
    x = torch.randn(1, 3, 4, 6)
    (plain,), (permuted,) = mhub.features(model)(x), mhub.features(nhwc)(x)
    torch.testing.assert_close(permuted, plain.permute(0, 3, 1, 2))


@pytest.mark.parametrize("points, message", [
    (None, "declares no feature points"),
    ([{"module": "backbone.9", "num_chs": 4, "reduction": 2}], "no module 'backbone.9'"),
    ([{"module": "backbone.0", "num_chs": 0, "reduction": 2}], "'num_chs' must be a positive int"),
    ([{"module": "backbone.1", "num_chs": 4, "reduction": 4},
      {"module": "backbone.0", "num_chs": 4, "reduction": 2}], "must not decrease"),
    ([{"module": "backbone.0", "num_chs": 4, "reduction": 2, "layout": "CHW"}], "layout"),
    ([{"module": "backbone.0", "num_chs": 4, "reduction": 2}] * 2, "listed twice"),
])
def test_malformed_declarations_are_named(points, message):
    model = mhub.BackboneClassifier(nn.Sequential(nn.Conv2d(3, 4, 2, 2), nn.ReLU()), nn.Identity(),
                                    feature_info=points)
    with pytest.raises(FeatureError, match=message):
        mhub.features(model)


class Skips(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Identity()

    def forward(self, x):
        return x


def test_a_level_whose_module_never_runs_is_named():
    model = mhub.BackboneClassifier(Skips(), nn.Identity(),
                                    feature_info=[{"module": "backbone.unused", "num_chs": 3, "reduction": 1}])
    with pytest.raises(FeatureError, match="never ran the feature module.*backbone.unused"):
        mhub.features(model)(torch.zeros(1, 3, 4, 4))


def test_a_model_without_declaration_or_sequence_is_refused():
    with pytest.raises(FeatureError, match="declares no feature points"):
        mhub.features(nn.Conv2d(3, 3, 1))
    custom = Tokens()
    custom.feature_info = [{"module": "proj", "num_chs": 6, "reduction": 4}]
    with pytest.raises(FeatureError, match="nn.Sequential"):
        mhub.features(custom)


# -- every family ----------------------------------------------------------------------------------------
# One architecture per distinct builder configuration; a family that lands without one here fails below.
REPRESENTATIVES = [
    "resnet18", "resnet50", "seresnext26t_32x4d", "res2net50_26w_4s", "legacy_seresnet18",
    "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5_v1stem", "semnasnet_075", "mnasnet_small",
    "efficientnet_lite0", "tf_efficientnet_b0", "efficientnet_v2_m", "tf_efficientnetv2_b0", "efficientnetv2_rw_s",
    "alexnet", "vgg11", "squeezenet1_0", "squeezenet1_1", "densenet161", "googlenet",
    "convnext_atto", "convmixer_1024_20_ks9_p14", "vit_ti_16", "mixer_s32_224", "resmlp_12_224", "gmlp_ti16_224",
    "inception_v3", "inception_v4", "inception_resnet_v2", "xception", "xception71", "xception41p",
    "unet_resnet18",
]


def test_every_registered_family_has_a_representative():
    registry = mhub.get_registry()
    covered = {registry.arch(name).family for name in REPRESENTATIVES}
    assert {arch.family for arch in registry.archs.values()} <= covered


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_declared_levels_have_the_declared_shapes(name):
    # on the meta device: shapes without arithmetic, at 224 px as the weights were trained
    with on_meta():
        net = mhub.features(build(mhub.get_registry().arch(name)))
        levels = net(torch.empty(1, 3, 224, 224))
    assert len(levels) == len(net.feature_info) >= 3
    for tensor, info in zip(levels, net.feature_info):
        assert tensor.shape[1] == info["num_chs"], info
        # unpadded stems and pools (AlexNet, Inception) shrink maps below 224 / reduction, by less than sqrt(2)
        assert abs(math.log2(224 / tensor.shape[-1] / info["reduction"])) < 0.5, info
