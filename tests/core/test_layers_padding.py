"""TensorFlow SAME padding: output sizes, where the odd pixel goes, and agreement with timm's version."""

import math

import pytest
import torch

from mhub.layers import Conv2dSame, MaxPool2dSame, conv_norm, create_conv2d, same_padding


@pytest.mark.parametrize("size", [7, 8, 15, 16, 33])
@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_conv_output_is_ceil_of_input_over_stride(size, kernel, stride):
    conv = conv_norm(kernel, 2, 3, padding="same", stride=stride).eval()
    out = conv(torch.randn(1, 2, size, size + 1))
    assert out.shape[-2:] == (math.ceil(size / stride), math.ceil((size + 1) / stride))


def test_same_padding_puts_the_extra_pixel_after_like_tensorflow():
    # TensorFlow's documented rule: pad_total = max((ceil(n/s)-1)*s + k - n, 0), the smaller half first.
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(224, 3, 1) == (1, 1)
    assert same_padding(8, 1, 2) == (0, 0)


def test_strided_same_conv_samples_from_the_top_left():
    # A kernel that copies its window's top-left pixel exposes the asymmetric placement: with no
    # padding before, output (i, j) is input (2i, 2j).
    conv = create_conv2d(1, 1, 3, stride=2, padding="same", bias=False)
    assert isinstance(conv, Conv2dSame)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    assert torch.equal(conv(x), x[..., ::2, ::2])


def test_stride_one_same_is_static_symmetric_padding():
    conv = create_conv2d(1, 1, 5, padding="same")
    assert type(conv) is torch.nn.Conv2d and conv.padding == (2, 2)


@pytest.mark.parametrize("size", [9, 10])
@pytest.mark.parametrize("kernel,stride,dilation", [(3, 2, 1), (5, 2, 1), (3, 1, 2), (4, 1, 1)])
def test_same_conv_matches_timm(size, kernel, stride, dilation):
    timm_layers = pytest.importorskip("timm.layers")
    torch.manual_seed(0)
    ours = create_conv2d(3, 4, kernel, stride=stride, dilation=dilation, padding="same", bias=False)
    theirs = timm_layers.create_conv2d(3, 4, kernel, stride=stride, dilation=dilation, padding="same")
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, size, size + 3)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_max_pool_same_matches_tensorflow_sizes_and_pads_with_minus_infinity():
    pool = MaxPool2dSame(3, 2)
    x = -torch.ones(1, 1, 8, 8)  # zero padding would leak a 0 into the max
    out = pool(x)
    assert out.shape[-2:] == (4, 4) and torch.all(out == -1)


def test_unknown_padding_string_is_rejected():
    with pytest.raises(ValueError, match="padding"):
        create_conv2d(1, 1, 3, padding="valid-ish")
