"""The builder protocol: strides, widths, channel chaining and drop-rate schedules per block."""

import pytest
import torch
from torch import nn

from mhub.builders import BlockBuilder, build_stages, doubling_widths, stage_strides, stage_widths


def _record(**kwargs):
    """A block factory that remembers what it was asked to build."""
    block = nn.Identity()
    block.kwargs = kwargs
    return block


def test_resnet_rules_chain_channels_and_halve_once_per_stage():
    builder = BlockBuilder(_record, [2, 3, 1], in_chs=64, width_fn=doubling_widths(256))
    body = build_stages(builder)
    got = [[b.kwargs for b in stage] for stage in body]
    assert [len(s) for s in got] == [2, 3, 1]
    assert [[k["stride"] for k in s] for s in got] == [[1, 1], [2, 1, 1], [2]]
    assert [[k["out_chs"] for k in s] for s in got] == [[256, 256], [512] * 3, [1024]]
    assert [[k["in_chs"] for k in s] for s in got] == [[64, 256], [256, 512, 512], [512]]
    assert builder.reduction(2) == 4
    assert all("drop_path_rate" not in k for s in got for k in s)


def test_drop_path_rates_are_linear_over_the_global_block_index():
    builder = BlockBuilder(_record, [3, 4, 6, 3], in_chs=8, width_fn=doubling_widths(8), drop_path_rate=0.2)
    rates = [builder.drop_path(s, b) for s, b in builder.positions()]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.2, 16, dtype=torch.float32))
    assert builder(3, 2).kwargs["drop_path_rate"] == pytest.approx(0.2)
    assert "drop_path_rate" not in builder(0, 0).kwargs  # rate 0: the block gets nothing to drop


def test_drop_block_only_in_enabled_stages():
    builder = BlockBuilder(_record, [1, 1, 2, 2], in_chs=8, width_fn=doubling_widths(8),
                           drop_block_rate=0.1, drop_block_sizes=[None, None, 5, 3])
    assert "drop_block_rate" not in builder(1, 0).kwargs
    assert builder(2, 0).kwargs["drop_block_size"] == 5
    assert builder(3, 1).kwargs == {**builder(3, 1).kwargs, "drop_block_rate": pytest.approx(0.1), "drop_block_size": 3}
    assert builder(2, 0).kwargs["drop_block_rate"] == pytest.approx(0.1 * 2 / 5)


def test_rules_are_replaceable_callbacks():
    builder = BlockBuilder(_record, [1, 2, 2], in_chs=3, width_fn=stage_widths([16, 24, 40]),
                           stride_fn=stage_strides([1, 2, 2]), block_kwargs=lambda s, b: {"kernel_size": 3 + 2 * s},
                           schedule=lambda rate, i, n: 0.5, drop_path_rate=0.1)
    k = builder(2, 1).kwargs
    assert k == {"in_chs": 40, "out_chs": 40, "stride": 1, "drop_path_rate": 0.5, "kernel_size": 7}
    assert builder(1, 0).kwargs["stride"] == 2 and builder(1, 0).kwargs["in_chs"] == 16


def test_out_of_range_positions_are_errors():
    builder = BlockBuilder(_record, [1, 2], in_chs=3, width_fn=doubling_widths(4))
    with pytest.raises(IndexError):
        builder(1, 2)
    with pytest.raises(ValueError):
        BlockBuilder(_record, [1, 0], in_chs=3, width_fn=doubling_widths(4))
