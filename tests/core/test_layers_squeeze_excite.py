"""Squeeze-excite layers agree with timm's SEModule / EffectiveSEModule (the reference layout)."""

import pytest
import torch

from mhub.layers import efficient_squeeze_excite, squeeze_excite

timm_layers = pytest.importorskip("timm.layers")


@pytest.mark.parametrize("chs", [64, 256, 2048, 40])
def test_squeeze_excite_matches_timm_semodule(chs):
    torch.manual_seed(0)
    ours = squeeze_excite(chs)
    theirs = timm_layers.SEModule(chs)  # defaults: rd_ratio 1/16, divisor 8, ReLU, sigmoid
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, chs, 5, 5)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_explicit_reduced_width_and_activations():
    se = squeeze_excite(96, rd_channels=24, act_layer=torch.nn.SiLU)
    assert se.fc1.out_channels == 24 and isinstance(se.act, torch.nn.SiLU)
    assert se.fc1.bias is not None and se.fc2.bias is not None


def test_efficient_squeeze_excite_matches_timm():
    torch.manual_seed(0)
    ours = efficient_squeeze_excite(32)
    theirs = timm_layers.EffectiveSEModule(32)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 32, 4, 4)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
