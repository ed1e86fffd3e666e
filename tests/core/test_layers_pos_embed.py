"""Class token + position embedding; resampling equal to timm's resample_abs_pos_embed, on load too."""

import pytest
import torch

from mhub.layers import PositionEmbedding, resample_pos_embed

timm_layers = pytest.importorskip("timm.layers")


@pytest.mark.parametrize("old,new,prefix", [((14, 14), (24, 24), 1), ((24, 24), (14, 14), 1), ((7, 7), (5, 9), 0)])
def test_resampling_equals_timm(old, new, prefix):
    torch.manual_seed(0)
    pos = torch.randn(1, prefix + old[0] * old[1], 8)
    ours = resample_pos_embed(pos, new, num_prefix_tokens=prefix)
    theirs = timm_layers.resample_abs_pos_embed(pos, list(new), num_prefix_tokens=prefix)
    assert ours.shape == (1, prefix + new[0] * new[1], 8)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours[:, :prefix], pos[:, :prefix])  # the class token's entry is kept
    assert resample_pos_embed(pos, old, num_prefix_tokens=prefix) is pos


def test_forward_prepends_the_class_token_and_adds_positions():
    embed = PositionEmbedding((2, 3), 4)
    x = torch.randn(2, 6, 4)
    out = embed(x)
    torch.testing.assert_close(out[:, 0], (embed.cls_token + embed.pos_embed[:, :1]).expand(2, 1, 4)[:, 0])
    torch.testing.assert_close(out[:, 1:], x + embed.pos_embed[:, 1:])
    assert PositionEmbedding(3, 4, class_token=False)(torch.zeros(1, 9, 4)).shape == (1, 9, 4)


def test_loading_a_checkpoint_of_another_grid_resamples_it():
    small = PositionEmbedding(4, 8)
    large = PositionEmbedding(6, 8)
    large.load_state_dict(small.state_dict())
    expected = timm_layers.resample_abs_pos_embed(small.pos_embed.detach(), [6, 6], num_prefix_tokens=1)
    torch.testing.assert_close(large.pos_embed.detach(), expected)
    torch.testing.assert_close(large.cls_token, small.cls_token)


def test_other_widths_are_left_for_the_shape_check():
    state = {"pos_embed": torch.zeros(1, 17, 5)}
    PositionEmbedding(4, 8).adapt_state_dict(state, "")
    assert state["pos_embed"].shape == (1, 17, 5)
    with pytest.raises(RuntimeError, match="size mismatch"):
        PositionEmbedding(4, 8).load_state_dict({"pos_embed": torch.zeros(1, 17, 5), "cls_token": torch.zeros(1, 1, 8)})
