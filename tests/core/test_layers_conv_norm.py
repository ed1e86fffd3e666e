"""conv_norm / basic_conv_bn: children, bias rule, revnorm order, in-place activations, TensorFlow defaults."""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from mhub.layers import basic_conv_bn, conv_norm, make_act


def test_children_and_default_bias():
    block = conv_norm(3, 4, 8)
    assert list(dict(block.named_children())) == ["conv", "norm", "act"]
    assert block.conv.bias is None and block.norm.num_features == 8 and isinstance(block.act, nn.ReLU)
    assert block.conv.padding == (1, 1)


def test_without_norm_the_conv_has_a_bias_and_optional_parts_are_omitted():
    block = conv_norm(1, 4, 8, None, norm_layer=None)
    assert list(dict(block.named_children())) == ["conv"]
    assert block.conv.bias is not None
    assert conv_norm(1, 4, 8, norm_layer=None, bias=False).conv.bias is None


def test_forward_is_conv_then_norm_then_act():
    torch.manual_seed(0)
    block = conv_norm(3, 2, 3, stride=2, dilation=2).eval()
    with torch.no_grad():
        block.norm.running_mean.uniform_(-1, 1)
        block.norm.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 2, 11, 11)
    n = block.norm
    expected = F.relu(F.batch_norm(F.conv2d(x, block.conv.weight, stride=2, padding=2, dilation=2),
                                   n.running_mean, n.running_var, n.weight, n.bias, eps=1e-5))
    torch.testing.assert_close(block(x), expected)


def test_revnorm_normalises_the_input_before_the_conv():
    torch.manual_seed(0)
    block = conv_norm(3, 2, 5, revnorm=True).eval()
    assert list(dict(block.named_children())) == ["norm", "act", "conv"]
    assert block.norm.num_features == 2
    with torch.no_grad():
        block.norm.running_mean.fill_(0.5)
    x = torch.randn(1, 2, 6, 6)
    n = block.norm
    expected = F.conv2d(F.relu(F.batch_norm(x, n.running_mean, n.running_var, n.weight, n.bias, eps=1e-5)),
                        block.conv.weight, block.conv.bias, padding=1)
    torch.testing.assert_close(block(x), expected)


def test_norm_options_and_other_norm_layers():
    block = conv_norm(3, 4, 8, eps=1e-3, momentum=0.01)
    assert (block.norm.eps, block.norm.momentum) == (1e-3, 0.01)
    group = conv_norm(3, 4, 8, norm_layer=partial(nn.GroupNorm, 2))
    assert isinstance(group.norm, nn.GroupNorm) and group.norm.num_channels == 8


def test_basic_conv_bn_has_tensorflow_batchnorm_defaults():
    block = basic_conv_bn(3, 4, 8, stride=2)
    assert (block.norm.eps, block.norm.momentum) == (1e-3, 3e-3)
    assert block.conv.stride == (2, 2) and block.conv.bias is None


def test_act_before_norm_orders_conv_act_norm_and_keeps_the_conv_bias():
    torch.manual_seed(0)
    block = conv_norm(3, 2, 4, nn.GELU, act_before_norm=True).eval()
    assert list(dict(block.named_children())) == ["conv", "act", "norm"]
    assert block.conv.bias is not None  # the norm does not follow the conv directly, so the bias matters
    with torch.no_grad():
        block.norm.running_mean.uniform_(-1, 1)
    x = torch.randn(1, 2, 5, 5)
    expected = block.norm(F.gelu(F.conv2d(x, block.conv.weight, block.conv.bias, padding=1)))
    torch.testing.assert_close(block(x), expected)


def test_activations_run_in_place_on_the_units_own_tensors_only():
    assert conv_norm(3, 4, 4).act.inplace and conv_norm(3, 4, 4, act_before_norm=True).act.inplace
    assert conv_norm(3, 4, 4, revnorm=True).act.inplace  # after the norm's fresh output
    pre_act = conv_norm(3, 4, 4, revnorm=True, norm_layer=None)  # the activation would see the caller's tensor
    assert not pre_act.act.inplace
    x = torch.randn(1, 4, 6, 6)
    before = x.clone()
    pre_act(x)
    assert torch.equal(x, before)
    assert isinstance(conv_norm(3, 4, 4, nn.GELU).act, nn.GELU)  # a factory without `inplace`
    assert make_act(partial(nn.Hardtanh, 0.0, 6.0), inplace=True).inplace
    assert make_act(None, inplace=True) is None and not make_act(nn.ReLU).inplace
