"""PatchEmbed: timm's patch embedding (tokens in row-major patch order); inputs must have the built size."""

import pytest
import torch

from mhub import MhubError
from mhub.layers import ImageSizeError, PatchEmbed

timm_layers = pytest.importorskip("timm.layers")


def test_matches_timm_patch_embed():
    torch.manual_seed(0)
    ours = PatchEmbed(32, 8, 3, 16)
    theirs = timm_layers.PatchEmbed(32, 8, 3, 16)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    assert ours.grid_size == (4, 4) and ours.num_patches == 16 and ours(x).shape == (2, 16, 16)


def test_token_order_is_row_major_and_the_map_is_available():
    ours = PatchEmbed((16, 24), 8, 1, 2, flatten=False)
    x = torch.randn(1, 1, 16, 24)
    grid = ours(x)
    assert grid.shape == (1, 2, 2, 3)
    tokens = PatchEmbed((16, 24), 8, 1, 2)
    tokens.load_state_dict(ours.state_dict())
    torch.testing.assert_close(tokens(x)[0, 4], grid[0, :, 1, 1])  # row 1, column 1 of a 2x3 grid


def test_wrong_input_size_is_a_one_line_error():
    embed = PatchEmbed(32, 8, 3, 4)
    with pytest.raises(ImageSizeError, match=r"input size \(48, 48\) differs from the img_size \(32, 32\)") as info:
        embed(torch.randn(1, 3, 48, 48))
    assert isinstance(info.value, MhubError) and "\n" not in str(info.value)
    with pytest.raises(ImageSizeError, match="smaller than patch_size"):
        PatchEmbed(4, 8)
