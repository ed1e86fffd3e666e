"""LayerScale: a per-channel scale on the last axis, initialised to its value and reset to it."""

import torch

from mhub.layers import LayerScale


def test_scales_the_last_axis():
    scale = LayerScale(3, init_value=0.5)
    with torch.no_grad():
        scale.gamma.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.ones(2, 4, 3)
    torch.testing.assert_close(scale(x), torch.tensor([1.0, 2.0, 3.0]).expand(2, 4, 3))
    scale.reset_parameters()
    assert torch.equal(scale.gamma, torch.full((3,), 0.5))
