"""The mid-level resnet(): stochastic depth, DropBlock, attention, stems, downsamples, revnorm, zero-init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mhub
from mhub.layers import DropBlock, EffectiveSqueezeExcite, SqueezeExcite, StochasticDepth
from mhub_resnet.model import Bottleneck, ResNetConfigError, make_shortcut, resnet

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _blocks(model):
    return [block for stage in mhub.backbone(model).stages for block in stage]


def test_drop_path_rates_rise_linearly_over_all_blocks():
    model = resnet("bottleneck", [3, 4, 6, 3], drop_path_rate=0.3)
    rates = [b.drop_path.p if isinstance(b.drop_path, StochasticDepth) else 0.0 for b in _blocks(model)]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.3, 16))


def test_drop_block_only_in_the_last_two_stages_with_rising_rates():
    model = resnet("basic", [2, 2, 2, 2], drop_block_rate=0.1)
    stages = mhub.backbone(model).stages
    assert not any(isinstance(m, DropBlock) for m in stages[:2].modules())
    drops = [b.drop_block for b in list(stages[2]) + list(stages[3])]
    assert [d.block_size for d in drops] == [5, 5, 3, 3]
    assert [round(d.drop_prob, 6) for d in drops] == [round(0.1 * i / 7, 6) for i in (4, 5, 6, 7)]


def test_regularisers_are_identity_in_eval():
    torch.manual_seed(0)
    regularised = resnet("basic", [2, 2, 2, 2], drop_path_rate=0.5, drop_block_rate=0.3, dropout=0.5).eval()
    plain = resnet("basic", [2, 2, 2, 2], dropout=0.5)
    plain.load_state_dict(regularised.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(regularised(X), plain.eval()(X))
        regularised.train()
        assert not torch.allclose(regularised(X), plain.eval()(X))


@pytest.mark.parametrize("attn,kind", [("se", SqueezeExcite), ("ese", EffectiveSqueezeExcite),
                                       (lambda chs: nn.Identity(), nn.Identity)])
def test_attention_layer_argument(attn, kind):
    blocks = _blocks(resnet("bottleneck", [1, 1, 1, 1], attn_layer=attn))
    assert all(type(b.attn) is kind for b in blocks)
    if kind is SqueezeExcite:
        assert blocks[-1].attn.fc1.out_channels == 2048 // 16


@pytest.mark.parametrize("stem_type,widths", [("default", [64]), ("deep", [32, 32, 64]),
                                              ("deep_wide", [64, 64, 128]), ("deep_tiered", [24, 32, 64])])
def test_stem_variants(stem_type, widths):
    model = resnet("basic", [1, 1, 1, 1], stem_type=stem_type).eval()
    stem = mhub.backbone(model).stem
    convs = [m for m in stem.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == widths
    assert mhub.backbone(model)(X).shape[-2:] == (2, 2)


@pytest.mark.parametrize("kind,pool", [("conv", None), ("avg", nn.AvgPool2d), ("max", nn.MaxPool2d)])
def test_downsample_types(kind, pool):
    shortcut = make_shortcut(kind, 64, 128, 2)
    assert [type(m) for m in shortcut.children()] == ([pool] if pool else []) + [nn.Conv2d, nn.BatchNorm2d]
    assert shortcut(torch.randn(1, 64, 9, 9)).shape == (1, 128, 5, 5)
    assert isinstance(make_shortcut(kind, 64, 64, 1), nn.Identity)
    model = resnet("bottleneck", [1, 1, 1, 1], downsample=kind).eval()
    assert mhub.backbone(model)(X).shape[1:] == (2048, 2, 2)


def test_unknown_choices_are_config_errors():
    for kwargs in [dict(stem_type="wide"), dict(downsample="pixel"), dict(attn_layer="cbam"), dict(block="dense")]:
        with pytest.raises(ResNetConfigError):
            resnet(**{"block": "basic", "layers": [1, 1, 1, 1], **kwargs})


def test_revnorm_puts_norms_before_convs_and_ends_with_a_norm():
    model = resnet("bottleneck", [1, 1, 1, 1], revnorm=True).eval()
    block = _blocks(model)[0]
    assert list(dict(block.conv1.named_children())) == ["norm", "act", "conv"]
    assert block.conv1.norm.num_features == 64  # normalises the block's input
    assert list(dict(mhub.backbone(model).named_children())) == ["stem", "stages", "norm", "act"]
    assert model(X).shape == (2, 1000)


def test_zero_init_last_makes_blocks_start_as_identity():
    block = Bottleneck(256, 256).eval()
    block.zero_init_last()
    x = torch.randn(1, 256, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))
    zeroed = resnet("basic", [1, 1, 1, 1])
    kept = resnet("basic", [1, 1, 1, 1], zero_init_last=False)
    assert torch.all(_blocks(zeroed)[0].conv2.norm.weight == 0)
    assert torch.all(_blocks(kept)[0].conv2.norm.weight == 1)


def test_classifier_options():
    model = resnet("basic", [1, 1, 1, 1], num_classes=3, hidden=32, dropout=0.0, pool="avgmax")
    head = mhub.classifier(model)
    assert list(dict(head.named_children())) == ["pool", "flatten", "hidden", "act", "dropout", "fc"]
    assert model.eval()(X).shape == (2, 3)
