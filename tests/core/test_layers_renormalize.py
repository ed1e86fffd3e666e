"""Renormalize reproduces torchvision's Inception v3 ``transform_input`` (RGB, and grey read as RGB) and holds no
state."""

from __future__ import annotations

import pytest
import torch

from mhub import ConfigError
from mhub.layers import Renormalize


def test_default_matches_torchvision_transform_input():
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        reference = torchvision.models.inception_v3(init_weights=False, aux_logits=False, transform_input=True)
    x = torch.randn(2, 3, 7, 7)
    torch.testing.assert_close(Renormalize()(x), reference._transform_input(x), rtol=0, atol=1e-6)


def test_round_trip_and_no_state_dict_entries():
    there = Renormalize((0.1, 0.2), (0.5, 2.0), (0.0, 1.0), (1.0, 0.25))
    back = Renormalize((0.0, 1.0), (1.0, 0.25), (0.1, 0.2), (0.5, 2.0))
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(back(there(x)), x)
    # a value the formula gives by hand: channel 1, x = 1 -> (1 * 2.0 + 0.2 - 1.0) / 0.25
    assert there(torch.ones(1, 2, 1, 1))[0, 1].item() == pytest.approx((2.0 + 0.2 - 1.0) / 0.25)
    assert there.state_dict() == {}
    with pytest.raises(ValueError, match="one mean and one std per channel"):
        Renormalize((0.5,), (0.5, 0.5))


def test_a_grey_channel_is_read_as_every_channel():
    g = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    grey = Renormalize.transform_input(1)
    assert (grey.in_chans, grey.out_chans) == (1, 3)
    torch.testing.assert_close(grey(g), Renormalize()(g.expand(-1, 3, -1, -1)), rtol=0, atol=0)
    for in_chans in (2, 4):
        with pytest.raises(ConfigError, match=rf"^transform_input re-normalises .*; got in_chans={in_chans}$"):
            Renormalize.transform_input(in_chans)
    with pytest.raises(ConfigError, match="maps 3 channels, or 1 grey channel read as each of them; got in_chans=2"):
        Renormalize(in_chans=2)
