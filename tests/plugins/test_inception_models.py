"""The Inception family against torchvision and timm.

Parameter counts against torchvision's published ``num_params`` (data/upstream-weights.json) and timm's models;
outputs against randomly initialised timm/torchvision models (BatchNorm statistics randomised) after conversion,
at the weight sets' 299 px; BatchNorm constants against the upstream modules they were converted from.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import mhub
import mhub_inception
from conftest import count, on_meta, published_torchvision_params, randomly_filled
from parity import assert_outputs_close
from mhub_inception import configs, model
from mhub_inception.blocks import InceptionConfigError
from mhub_inception.convert import from_timm, from_torchvision

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

ARCHS = list(configs.ARCHS)
TIMM_NAME = {"xception": "legacy_xception"}  # our name -> timm's, where they differ
TF_EPS = 1e-3


def build(name: str, **kwargs) -> nn.Module:
    function, defaults, *_ = configs.ARCHS[name]
    return getattr(model, function)(**{**defaults, **kwargs})


def converted(name: str, state: dict, convert, **kwargs) -> nn.Module:
    """Our model built on the meta device and given the converted tensors (strictly), in eval mode."""
    with on_meta():
        ours = build(name, **kwargs)
    ours.load_state_dict(convert(state), strict=True, assign=True)
    return ours.eval()


def image(channels: int = 3) -> torch.Tensor:
    return torch.randn(1, channels, 299, 299, generator=torch.Generator().manual_seed(1))


# -- parameter counts ------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=ARCHS)
def meta_pair(request):
    """``(name, timm model, our model)``, both on the meta device: structure without values."""
    name = request.param
    with on_meta():
        return name, timm.create_model(TIMM_NAME.get(name, name)), build(name)


def test_parameter_count_equals_timm(meta_pair):
    _, upstream, ours = meta_pair
    assert count(ours) == count(upstream)


def test_inception_v3_parameter_counts_equal_torchvision_published():
    published = published_torchvision_params()["inception_v3"]
    with torch.device("meta"):
        with_aux = build("inception_v3", aux_logits=True)
        plain = build("inception_v3")
        torchvision_plain = torchvision.models.inception_v3(init_weights=False, aux_logits=False)
    assert count(with_aux) == published == 27161264  # torchvision's figure includes the auxiliary classifier
    assert count(plain) == count(torchvision_plain) == configs.ARCHS["inception_v3"][-1]


# -- converted upstream models ----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=ARCHS)
def pair(request):
    """``(name, timm model, our converted model)``; one architecture alive at a time."""
    name = request.param
    upstream = randomly_filled(lambda: timm.create_model(TIMM_NAME.get(name, name)))
    yield name, upstream, converted(name, upstream.state_dict(), from_timm)


def test_converted_timm_model_matches_at_299(pair):
    name, upstream, ours = pair
    x = image()
    with torch.no_grad():
        assert_outputs_close(ours(x), upstream(x))


def test_batchnorm_constants_are_the_upstream_ones(meta_pair):
    """Every norm carries the epsilon and momentum of the upstream module it was converted from: TensorFlow's
    epsilon 1e-3 except in the two ports that kept PyTorch's (legacy Xception, xception41p), momentum 0.1."""
    name, upstream, ours = meta_pair
    upstream_modules, our_modules = dict(upstream.named_modules()), dict(ours.named_modules())
    # keys stand in for tensors: the map tells which upstream module each of our norms came from
    origin = from_timm({key: key for key in upstream.state_dict()})
    norms = [key[:-len(".running_mean")] for key in origin if key.endswith(".running_mean")]
    assert len(norms) == sum(isinstance(m, _BatchNorm) for m in ours.modules()) > 0
    expected_eps = 1e-5 if name in ("xception", "xception41p") else TF_EPS
    for norm in norms:
        theirs = upstream_modules[origin[f"{norm}.running_mean"][:-len(".running_mean")]]
        mine = our_modules[norm]
        assert (mine.eps, mine.momentum) == (theirs.eps, theirs.momentum) == (expected_eps, 0.1), norm
    for unit in ours.modules():  # conv+norm units: the norm's shift replaces the conv bias
        if isinstance(unit, nn.Sequential) and hasattr(unit, "conv") and hasattr(unit, "norm"):
            assert unit.conv.bias is None


@pytest.fixture(scope="module")
def torchvision_v3():
    """torchvision's Inception v3 as its weights are published: with the auxiliary classifier."""
    return randomly_filled(lambda: torchvision.models.inception_v3(init_weights=False, aux_logits=True,
                                                                  transform_input=False))


def test_torchvision_model_converts_with_its_auxiliary_classifier(torchvision_v3):
    state = torchvision_v3.state_dict()
    assert any(key.startswith("AuxLogits.") for key in state)
    ours = converted("inception_v3", state, from_torchvision, aux_logits=True)  # (strict: every key has a place)
    x = image()
    with torch.no_grad():
        assert_outputs_close(ours(x), torchvision_v3(x))


def test_transform_input_matches_torchvision(torchvision_v3):
    """With transform_input, ImageNet-normalised inputs give what torchvision's transform_input=True model gives."""
    ours = converted("inception_v3", torchvision_v3.state_dict(), from_torchvision, transform_input=True,
                     aux_logits=True)
    x = image()
    torchvision_v3.transform_input = True
    try:
        with torch.no_grad():
            reference = torchvision_v3(x)
            assert_outputs_close(ours(x), reference)
            plain = converted("inception_v3", torchvision_v3.state_dict(), from_torchvision, aux_logits=True)(x)
        # the property matters: without it the outputs differ far beyond the tolerance
        assert (plain - reference).abs().max() > 100 * 1e-5 * max(1.0, reference.abs().max().item())
    finally:
        torchvision_v3.transform_input = False


# -- options and the three levels (shapes only, on the meta device) ----------------------------------------
def test_auxiliary_classifier_runs_in_training_only():
    with torch.device("meta"):
        net = build("inception_v3", aux_logits=True, num_classes=7)
        x = torch.empty(2, 3, 299, 299)
        logits, aux = net.train()(x)
        assert logits.shape == aux.shape == (2, 7)
        assert net.eval()(x).shape == (2, 7)
        assert not hasattr(build("inception_v3"), "aux")


def test_inception_v3_initialisation_is_torchvisions_auxiliary_classifier_included():
    torch.manual_seed(0)
    net = build("inception_v3", aux_logits=True)
    # truncated normal, std 0.1, but 0.01 and 0.001 in the auxiliary classifier (torchvision's stddev attributes)
    for weight, std in [(net.classifier.fc.weight, 0.1), (net.backbone.stem.conv1a.conv.weight, 0.1),
                        (net.aux.conv0.conv.weight, 0.1), (net.aux.conv1.conv.weight, 0.01),
                        (net.aux.head.fc.weight, 0.001)]:
        assert weight.std().item() == pytest.approx(std, rel=0.1)
        assert weight.abs().max().item() <= 2.0


def test_aligned_xception_options():
    with torch.device("meta"):
        same = build("xception41", padding="same", drop_path_rate=0.2)
        assert same(torch.empty(1, 3, 299, 299)).shape == (1, 1000)
    strided = same.backbone.exit[0].stack.conv3.dw.conv
    assert isinstance(strided, mhub.layers.Conv2dSame) and strided.stride == (2, 2)  # TensorFlow's SAME padding
    rates = [block.drop_path.p for flow in ("entry", "middle", "exit") for block in getattr(same.backbone, flow)
             if isinstance(block.drop_path, mhub.layers.StochasticDepth)]
    assert rates[-1] == pytest.approx(0.2 * 11 / 12) and rates == sorted(rates)  # linear; the last block has no skip


def test_high_level_constructors():
    with torch.device("meta"):
        assert count(model.Inceptionv4(num_classes=10)) == count(build("inception_v4", num_classes=10))
        grey = model.InceptionResNetv2(in_chans=1)
        assert mhub.backbone(grey).stem.conv1a.conv.in_channels == 1
        assert count(model.Xception()) == count(build("xception"))
        assert count(model.Xception(65)) == count(build("xception65"))
        assert count(model.Xception(65, preact=True)) == count(build("xception65p"))
        assert count(model.Inceptionv3(aux_logits=True)) == 27161264
    with pytest.raises(InceptionConfigError, match="^Xception has no configuration 50; valid: None, 41, 65, 71$"):
        model.Xception(50)
    with pytest.raises(InceptionConfigError,
                       match=r"^Xception\(preact=True\) has no default configuration; give a depth: 41, 65$"):
        model.Xception(preact=True)
    with pytest.raises(InceptionConfigError, match=r"^Xception\(preact=True\) has no configuration 71; valid: 41, 65$"):
        model.Xception(71, preact=True)


def test_package_re_exports_the_high_level_constructors():
    for name in ("Inceptionv3", "Inceptionv4", "InceptionResNetv2", "Xception"):
        assert getattr(mhub_inception, name) is getattr(model, name)
    assert sorted(mhub_inception.__all__) == sorted(["Inceptionv3", "Inceptionv4", "InceptionResNetv2", "Xception"])
    with pytest.raises(AttributeError, match="module 'mhub_inception' has no attribute 'inception_v3'"):
        mhub_inception.inception_v3  # noqa: B018 (the mid level stays in mhub_inception.model)


def test_bad_configurations_are_clear_errors():
    with pytest.raises(mhub.ConfigError, match="transform_input re-normalises RGB inputs .*; got in_chans=2"):
        build("inception_v3", in_chans=2, transform_input=True)
    wrong_width = (configs.INCEPTION_V3[0][:2] + (("inception_5x5", 300, 1, dict(pool_chs=64)),),
                   *configs.INCEPTION_V3[1:])
    with pytest.raises(InceptionConfigError, match="inception_5x5 on 288 channels gives 288 channels at stride 1, "
                                                   "but its table row says 300"):
        build("inception_v3", stages=wrong_width)
    with pytest.raises(InceptionConfigError, match="unknown Inception block 'inception_9x9'"):
        build("inception_v4", stages=((("inception_9x9", 384, 1, {}),),))
    with pytest.raises(InceptionConfigError, match="no aligned Xception config '42'"):
        model.xception_aligned("42")
