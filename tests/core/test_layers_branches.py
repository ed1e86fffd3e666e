"""ConcatBranches runs every branch on the same input and stacks the outputs in order."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mhub.layers import ConcatBranches


def test_outputs_are_concatenated_on_channels_in_branch_order():
    torch.manual_seed(0)
    a, b = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 5, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    out = ConcatBranches(a, b)(x)
    assert out.shape == (2, 7, 6, 6)
    torch.testing.assert_close(out[:, :2], a(x))
    torch.testing.assert_close(out[:, 2:], b(x))


def test_named_branches_keep_their_names():
    module = ConcatBranches(OrderedDict(branch0=nn.Identity(), branch1=nn.MaxPool2d(3, 1, 1)))
    assert [name for name, _ in module.named_children()] == ["branch0", "branch1"]
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(module(x), torch.cat([x, nn.functional.max_pool2d(x, 3, 1, 1)], 1))
