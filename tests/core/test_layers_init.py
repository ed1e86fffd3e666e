"""``he_init``: the initialisation torchvision gives VGG, MobileNet/EfficientNet (fan-out) and DenseNet (fan-in)."""

import math

import pytest
import torch
from torch import nn

from mhub.layers import he_init


@pytest.mark.parametrize("mode, fan", [("fan_out", 256 * 9), ("fan_in", 64 * 9)])
def test_convolutions_are_he_normal_with_zero_bias_and_norms_are_unit(mode, fan):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 256, 3), nn.BatchNorm2d(256), nn.Flatten(), nn.Linear(512, 400))
    with torch.no_grad():
        model[1].weight.fill_(3.0)
    he_init(model, mode=mode)
    std = model[0].weight.std().item()
    assert abs(std - math.sqrt(2 / fan)) < 0.02 * math.sqrt(2 / fan)
    assert not model[0].bias.any() and not model[1].bias.any() and (model[1].weight == 1).all()
    assert abs(model[3].weight.std().item() - 0.01) < 5e-4 and not model[3].bias.any()


def test_linear_weights_keep_pytorchs_default_without_a_std():
    torch.manual_seed(0)
    linear = nn.Linear(100, 50)
    before = linear.weight.clone()
    he_init(linear, mode="fan_in", linear_std=None)
    assert torch.equal(linear.weight, before) and not linear.bias.any()
