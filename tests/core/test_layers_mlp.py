"""Mlp: equal to timm's Mlp, and with a spatial gating unit to timm's GatedMlp (gMLP)."""

from functools import partial

import pytest
import torch

from mhub.layers import Mlp, SpatialGatingUnit

timm_layers = pytest.importorskip("timm.layers")
timm_mixer = pytest.importorskip("timm.models.mlp_mixer")


def _noisy(module):
    with torch.no_grad():
        for tensor in module.parameters():
            tensor.add_(torch.randn_like(tensor), alpha=0.1)
    return module.eval()


def test_matches_timm_mlp():
    torch.manual_seed(0)
    ours = Mlp(16, 40, 8).eval()
    theirs = timm_layers.Mlp(16, 40, 8).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    assert ours(x).shape == (2, 5, 8)


def test_gated_matches_timm_gated_mlp():
    torch.manual_seed(0)
    ours = _noisy(Mlp(16, 48, gate_layer=partial(SpatialGatingUnit, seq_len=5)))
    theirs = timm_layers.GatedMlp(16, 48, gate_layer=partial(timm_mixer.SpatialGatingUnit, seq_len=5)).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert ours.fc2.in_features == 24  # the gate halves the width
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_a_gate_needs_an_even_width():
    with pytest.raises(ValueError, match="even hidden width"):
        Mlp(4, 7, gate_layer=partial(SpatialGatingUnit, seq_len=3))
