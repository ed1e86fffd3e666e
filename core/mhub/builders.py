"""The builder protocol: callables ``(stage_idx, block_idx) -> nn.Module`` (Metalhead's ``builders``).

A CNN body is a list of stages, each a run of blocks. A :class:`BlockBuilder` owns every rule that
varies with the position of a block: its input and output widths, its stride and its regularisation
rates, computed from the stage index, the block index within the stage and the global block index.
The rules are plain callbacks (``stride_fn``, ``width_fn``, ``schedule``, ``block_kwargs``) so a family,
or a user, replaces one rule without touching the loop that assembles the stages::

    builder = BlockBuilder(Bottleneck, [3, 4, 6, 3], in_chs=64, width_fn=doubling_widths(256))
    body = build_stages(builder)             # nn.Sequential of nn.Sequential stages
    block = builder(2, 0)                    # the first block of the third stage, alone

Indices are 0-based. Block factories receive ``in_chs``, ``out_chs`` and ``stride`` always,
``drop_path_rate`` when the schedule gives a positive rate, ``drop_block_rate`` and ``drop_block_size``
when DropBlock is enabled for the stage, and whatever ``block_kwargs(stage_idx, block_idx)`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

Rule = Callable[[int, int], int]
Schedule = Callable[[float, int, int], float]


def linear_schedule(rate: float, index: int, total: int) -> float:
    """Rate of the block at global ``index`` of ``total``: linear from 0 (first block) to ``rate`` (last)."""
    return rate * index / (total - 1) if total > 1 else 0.0


def constant_schedule(rate: float, index: int, total: int) -> float:
    """The same ``rate`` for every block."""
    return rate


def resnet_stride(stage_idx: int, block_idx: int) -> int:
    """ResNet's rule: the first block of every stage but the first halves the resolution."""
    return 2 if stage_idx > 0 and block_idx == 0 else 1


def stage_strides(strides: Sequence[int]) -> Rule:
    """Rule for config tables: the first block of stage ``s`` has stride ``strides[s]``, the others 1."""
    return lambda stage_idx, block_idx: strides[stage_idx] if block_idx == 0 else 1


def stage_widths(widths: Sequence[int]) -> Rule:
    """Rule for config tables: every block of stage ``s`` outputs ``widths[s]`` channels."""
    return lambda stage_idx, block_idx: widths[stage_idx]


def doubling_widths(base: int) -> Rule:
    """ResNet's rule: stage ``s`` outputs ``base * 2**s`` channels."""
    return lambda stage_idx, block_idx: base * 2 ** stage_idx


@dataclass
class BlockBuilder:
    """Build the block at ``(stage_idx, block_idx)``.

    Attributes:
        block_fn: block factory called as ``block_fn(in_chs=, out_chs=, stride=, ...)`` (see module doc).
        block_repeats: number of blocks in each stage.
        in_chs: channels entering the first block (the stem's output).
        width_fn: ``(stage_idx, block_idx) -> out_chs`` of that block (the feature-map rule).
        stride_fn: ``(stage_idx, block_idx) -> stride`` (default :func:`resnet_stride`).
        drop_path_rate: stochastic-depth rate reached by the last block.
        drop_block_rate: DropBlock rate reached by the last block.
        drop_block_sizes: DropBlock block size per stage; ``None``/0 entries (or ``None`` overall) disable
            DropBlock in that stage.
        schedule: ``(rate, global_idx, total_blocks) -> block rate`` for both drop rates
            (default :func:`linear_schedule`).
        block_kwargs: extra keyword arguments per block, a mapping (same for all) or a
            ``(stage_idx, block_idx) -> dict`` callable.
    """

    block_fn: Callable[..., nn.Module]
    block_repeats: Sequence[int]
    in_chs: int
    width_fn: Rule
    stride_fn: Rule = resnet_stride
    drop_path_rate: float = 0.0
    drop_block_rate: float = 0.0
    drop_block_sizes: Sequence[int | None] | None = None
    schedule: Schedule = linear_schedule
    block_kwargs: Mapping[str, Any] | Callable[[int, int], Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.block_repeats or any(n < 1 for n in self.block_repeats):
            raise ValueError(f"block_repeats must be positive counts, got {list(self.block_repeats)}")

    # -- positions ---------------------------------------------------------------------------------
    @property
    def total_blocks(self) -> int:
        """Blocks over all stages."""
        return sum(self.block_repeats)

    def global_index(self, stage_idx: int, block_idx: int) -> int:
        """Index of the block counted over all stages."""
        if not 0 <= stage_idx < len(self.block_repeats) or not 0 <= block_idx < self.block_repeats[stage_idx]:
            raise IndexError(f"no block ({stage_idx}, {block_idx}) in stages of {list(self.block_repeats)}")
        return sum(self.block_repeats[:stage_idx]) + block_idx

    def positions(self) -> list[tuple[int, int]]:
        """Every ``(stage_idx, block_idx)`` in forward order."""
        return [(s, b) for s, n in enumerate(self.block_repeats) for b in range(n)]

    # -- rules -------------------------------------------------------------------------------------
    def out_chs(self, stage_idx: int, block_idx: int) -> int:
        """Channels the block outputs (``width_fn``)."""
        return self.width_fn(stage_idx, block_idx)

    def block_in_chs(self, stage_idx: int, block_idx: int) -> int:
        """Channels entering the block: the previous block's output, or ``in_chs`` for the first."""
        index = self.global_index(stage_idx, block_idx)
        if index == 0:
            return self.in_chs
        return self.out_chs(*self.positions()[index - 1])

    def drop_path(self, stage_idx: int, block_idx: int) -> float:
        """Stochastic-depth rate of the block."""
        return self.schedule(self.drop_path_rate, self.global_index(stage_idx, block_idx), self.total_blocks)

    def drop_block(self, stage_idx: int, block_idx: int) -> tuple[float, int | None]:
        """``(rate, block_size)`` of DropBlock for the block; rate 0 where disabled."""
        sizes = self.drop_block_sizes
        size = sizes[stage_idx] if sizes is not None and stage_idx < len(sizes) else None
        if not size or not self.drop_block_rate:
            return 0.0, None
        return self.schedule(self.drop_block_rate, self.global_index(stage_idx, block_idx), self.total_blocks), size

    def reduction(self, stage_idx: int) -> int:
        """Total stride of the body after stage ``stage_idx`` (relative to its input)."""
        total = 1
        for s, b in self.positions():
            if s > stage_idx:
                break
            total *= self.stride_fn(s, b)
        return total

    # -- building ----------------------------------------------------------------------------------
    def kwargs(self, stage_idx: int, block_idx: int) -> dict[str, Any]:
        """The keyword arguments ``block_fn`` receives for this block."""
        kwargs: dict[str, Any] = dict(
            in_chs=self.block_in_chs(stage_idx, block_idx),
            out_chs=self.out_chs(stage_idx, block_idx),
            stride=self.stride_fn(stage_idx, block_idx),
        )
        drop_path_rate = self.drop_path(stage_idx, block_idx)
        if drop_path_rate > 0:
            kwargs["drop_path_rate"] = drop_path_rate
        drop_block_rate, size = self.drop_block(stage_idx, block_idx)
        if drop_block_rate > 0:
            kwargs.update(drop_block_rate=drop_block_rate, drop_block_size=size)
        extra = self.block_kwargs(stage_idx, block_idx) if callable(self.block_kwargs) else self.block_kwargs
        kwargs.update(extra)
        return kwargs

    def __call__(self, stage_idx: int, block_idx: int) -> nn.Module:
        return self.block_fn(**self.kwargs(stage_idx, block_idx))


def build_stages(builder: Callable[[int, int], nn.Module], block_repeats: Sequence[int] | None = None) -> nn.Sequential:
    """Assemble the body: one ``nn.Sequential`` per stage, holding ``builder(stage_idx, block_idx)`` blocks.

    Args:
        builder: any ``(stage_idx, block_idx) -> nn.Module`` callable.
        block_repeats: blocks per stage; defaults to ``builder.block_repeats``.

    Returns:
        ``nn.Sequential`` of stages (state-dict keys ``<stage>.<block>.…``).
    """
    if block_repeats is None:
        block_repeats = builder.block_repeats
    return nn.Sequential(*(nn.Sequential(*(builder(s, b) for b in range(n))) for s, n in enumerate(block_repeats)))
