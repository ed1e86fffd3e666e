"""``he_init``: the initialisation torchvision gives VGG, MobileNet/EfficientNet (fan-out) and DenseNet (fan-in).
``trunc_normal_init``: the truncated-normal scheme of ViT (linear layers) and ConvNeXt (convolutions and linears).
"""

import math

import pytest
import torch
from torch import nn

from mhub.layers import he_init
from mhub.layers.init import trunc_normal_init


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


def _conv_and_linear(bias: float) -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(64, 256, 3), nn.LayerNorm(256), nn.Linear(1000, 500))
    with torch.no_grad():
        for module in model:
            module.bias.fill_(bias)
    return model


def test_trunc_normal_init_draws_the_given_std_and_zeroes_biases_of_the_given_types():
    torch.manual_seed(0)
    model = _conv_and_linear(bias=0.5)
    norm = model[1].weight.clone()
    trunc_normal_init(model, 0.02, types=(nn.Conv2d, nn.Linear))
    for layer in model[0], model[2]:
        assert abs(layer.weight.mean().item()) < 1e-3 and abs(layer.weight.std().item() - 0.02) < 4e-4
        assert not layer.bias.any()
    assert torch.equal(model[1].weight, norm) and (model[1].bias == 0.5).all()  # other types are left alone


def test_trunc_normal_init_takes_linear_layers_by_default_and_can_keep_biases_and_bound_the_values():
    torch.manual_seed(0)
    model = _conv_and_linear(bias=0.5)
    conv = model[0].weight.clone()
    trunc_normal_init(model, 0.1, a=-0.05, b=0.05, zero_bias=False)
    assert torch.equal(model[0].weight, conv) and (model[0].bias == 0.5).all()
    weight = model[2].weight
    assert weight.abs().max().item() <= 0.05 and weight.std().item() < 0.03  # cut at half a std: about 0.028
    assert (model[2].bias == 0.5).all()
