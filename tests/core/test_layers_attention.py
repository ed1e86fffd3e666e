"""MultiHeadSelfAttention: equal to timm's Attention and to the textbook formula, on scaled_dot_product_attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from mhub.layers import MultiHeadSelfAttention

timm_layers = pytest.importorskip("timm.layers")


def test_matches_timm_attention_with_the_same_weights():
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(48, 4).eval()
    theirs = timm_layers.Attention(48, num_heads=4, qkv_bias=True).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)  # same layout: qkv, proj
    x = torch.randn(2, 7, 48)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_is_softmax_attention_per_head():
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(12, 3, qkv_bias=False).eval()
    x = torch.randn(2, 5, 12)
    q, k, v = (x @ ours.qkv.weight.T).split(12, dim=-1)
    heads = []
    for h in range(3):
        cols = slice(4 * h, 4 * h + 4)  # head h owns 4 consecutive channels of q, k and v
        weights = F.softmax(q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(4), dim=-1)
        heads.append(weights @ v[..., cols])
    expected = ours.proj(torch.cat(heads, dim=-1))
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


def test_runs_on_scaled_dot_product_attention(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        calls.append((q.shape, kwargs.get("dropout_p")))
        return original(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    attention = MultiHeadSelfAttention(16, 2, attn_drop=0.5)
    attention.eval()(torch.randn(3, 4, 16))
    attention.train()(torch.randn(3, 4, 16))
    assert calls == [((3, 2, 4, 8), 0.0), ((3, 2, 4, 8), 0.5)]  # (batch, heads, tokens, head_dim); no drop in eval


def test_dim_must_split_into_heads():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        MultiHeadSelfAttention(10, 3)
