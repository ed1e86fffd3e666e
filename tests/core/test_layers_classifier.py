"""create_classifier and the global pools."""

import pytest
import torch
from torch import nn

from mhub.layers import AdaptiveMeanMaxPool, create_classifier


def _modules(head):
    return [type(m) for m in head.children()]


def test_dropout_none_and_zero_are_distinct():
    assert nn.Dropout not in _modules(create_classifier(8, 3))
    head = create_classifier(8, 3, dropout=0.0)
    assert list(dict(head.named_children())) == ["pool", "flatten", "dropout", "fc"]
    assert head.dropout.p == 0.0


def test_hidden_layer():
    head = create_classifier(8, 3, hidden=16, dropout=0.5, act_layer=nn.GELU)
    assert list(dict(head.named_children())) == ["pool", "flatten", "hidden", "act", "dropout", "fc"]
    assert head.hidden.in_features == 8 and head.fc.in_features == 16
    assert head(torch.randn(2, 8, 3, 3)).shape == (2, 3)


def test_forward_is_pool_then_linear():
    torch.manual_seed(0)
    head = create_classifier(8, 3).eval()
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(head(x), x.mean((2, 3)) @ head.fc.weight.T + head.fc.bias)


def test_pools():
    x = torch.randn(2, 4, 5, 5)
    expected = 0.5 * (x.mean((2, 3)) + x.amax((2, 3)))
    torch.testing.assert_close(AdaptiveMeanMaxPool()(x).flatten(1), expected)
    head = create_classifier(4, 2, pool="catavgmax")
    assert head.fc.in_features == 8
    assert create_classifier(4, 0)(x).shape == (2, 4)  # num_classes 0: pooled features
    with pytest.raises(ValueError, match="pool"):
        create_classifier(4, 2, pool="median")


def test_token_pools_take_the_class_token_or_the_mean():
    from mhub.layers import TokenPool

    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(create_classifier(4, 0, pool="token")(x), x[:, 0])
    torch.testing.assert_close(create_classifier(4, 0, pool="avg_tokens")(x), x.mean(1))
    torch.testing.assert_close(TokenPool("avg", num_prefix_tokens=1)(x), x[:, 1:].mean(1))
    with pytest.raises(ValueError, match="token pool mode"):
        TokenPool("max")


def test_norm_after_pooling():
    torch.manual_seed(0)
    head = create_classifier(8, 3, norm_layer=nn.LayerNorm, dropout=0.0).eval()
    assert list(dict(head.named_children())) == ["pool", "flatten", "norm", "dropout", "fc"]
    x = torch.randn(2, 8, 4, 4)
    pooled = nn.functional.layer_norm(x.mean((2, 3)), (8,), head.norm.weight, head.norm.bias)
    torch.testing.assert_close(head(x), head.fc(pooled))
