"""Affine (ResMLP's norm): alpha * x + beta per channel, timm's layout."""

import pytest
import torch

from mhub.layers import Affine

timm_mixer = pytest.importorskip("timm.models.mlp_mixer")


def test_matches_timm_and_starts_as_identity():
    torch.manual_seed(0)
    ours = Affine(5)
    x = torch.randn(2, 3, 5)
    torch.testing.assert_close(ours(x), x)
    with torch.no_grad():
        ours.alpha.uniform_(0.5, 2)
        ours.beta.uniform_(-1, 1)
    theirs = timm_mixer.Affine(5)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours(x), ours.alpha * x + ours.beta)
