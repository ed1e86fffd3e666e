"""LayerNorm2d: LayerNorm over the channels of NCHW tensors, equal to timm's and torchvision's."""

import pytest
import torch

from mhub.layers import LayerNorm2d

timm_layers = pytest.importorskip("timm.layers")
tv_convnext = pytest.importorskip("torchvision.models.convnext")


def test_matches_timm_torchvision_and_a_channels_last_layernorm():
    torch.manual_seed(0)
    ours = LayerNorm2d(6)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 6, 3, 5) * 3 + 1
    for theirs in (timm_layers.LayerNorm2d(6), tv_convnext.LayerNorm2d(6, eps=1e-6)):
        theirs.load_state_dict(ours.state_dict(), strict=True)
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), ours.weight, ours.bias, 1e-6)
    torch.testing.assert_close(ours(x), expected.permute(0, 3, 1, 2))
    assert ours.eps == 1e-6
