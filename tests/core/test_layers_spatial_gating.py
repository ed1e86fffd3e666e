"""SpatialGatingUnit: equal to timm's (gMLP), starts as the identity on the first half of the channels."""

import pytest
import torch

from mhub.layers import SpatialGatingUnit

timm_mixer = pytest.importorskip("timm.models.mlp_mixer")


def test_matches_timm():
    torch.manual_seed(0)
    ours = SpatialGatingUnit(12, seq_len=7)
    with torch.no_grad():
        for tensor in ours.parameters():
            tensor.add_(torch.randn_like(tensor), alpha=0.3)
    theirs = timm_mixer.SpatialGatingUnit(12, seq_len=7)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 7, 12)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_initially_passes_the_first_half_through():
    x = torch.randn(2, 7, 12)
    torch.testing.assert_close(SpatialGatingUnit(12, seq_len=7)(x), x[..., :6], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="odd"):
        SpatialGatingUnit(5, seq_len=3)
