"""StochasticDepth and DropBlock: identity in eval, the configured drop rate in training."""

import pytest
import torch
import torch.nn.functional as F

from mhub.layers import DropBlock, StochasticDepth


@pytest.mark.parametrize("layer", [StochasticDepth(0.5), StochasticDepth(0.5, "batch"), DropBlock(0.3, 3)])
def test_identity_in_eval(layer):
    x = torch.randn(4, 3, 9, 9)
    layer.eval()
    assert layer(x) is x


def test_row_mode_drops_whole_samples_at_the_rate_and_keeps_the_mean():
    torch.manual_seed(0)
    layer = StochasticDepth(0.3, "row").train()
    out = layer(torch.ones(20000, 2, 2, 2))
    per_sample = out.flatten(1)
    # Each sample is either all zero or all 1/(1-p).
    assert torch.all((per_sample == 0).all(1) | torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(1))
    dropped = (per_sample == 0).all(1).float().mean().item()
    assert abs(dropped - 0.3) < 0.015  # ~4.6 standard deviations
    assert abs(out.mean().item() - 1.0) < 0.03


def test_batch_mode_drops_the_whole_batch_at_the_rate():
    torch.manual_seed(0)
    layer = StochasticDepth(0.25, "batch").train()
    outcomes = []
    for _ in range(4000):
        out = layer(torch.ones(3, 2))
        assert torch.all(out == out.flatten()[0])
        outcomes.append(out.flatten()[0].item() == 0)
    assert abs(sum(outcomes) / len(outcomes) - 0.25) < 0.03


@pytest.mark.parametrize("p,size", [(0.1, 3), (0.3, 5), (0.2, 1)])
def test_dropblock_drops_the_configured_fraction(p, size):
    torch.manual_seed(0)
    layer = DropBlock(p, size).train()
    out = layer(torch.ones(16, 16, 32, 32))
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 0.01
    # Survivors are rescaled so the expected activation is unchanged.
    assert abs(out.mean().item() - 1.0) < 1e-4


def test_dropblock_drops_square_blocks_not_pixels():
    torch.manual_seed(1)
    size = 4
    out = DropBlock(0.15, size).train()(torch.ones(2, 3, 20, 20))
    dropped = (out == 0).float()
    # Morphological opening with a size x size square leaves a union of such squares unchanged;
    # blocks may overhang the border, so the outside counts as dropped.
    padded = F.pad(dropped, (size - 1,) * 4, value=1.0)
    eroded = -F.max_pool2d(-padded, size, stride=1)
    opened = F.max_pool2d(F.pad(eroded, (size - 1,) * 4), size, stride=1)
    assert dropped.sum() > 0
    assert torch.equal(opened[..., size - 1:-(size - 1), size - 1:-(size - 1)], dropped)


def test_invalid_rates_are_rejected():
    with pytest.raises(ValueError):
        StochasticDepth(1.5)
    with pytest.raises(ValueError):
        StochasticDepth(0.1, "column")
    with pytest.raises(ValueError):
        DropBlock(1.0)
