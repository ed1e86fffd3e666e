"""Channel rounding shared by the MobileNet/EfficientNet/SE families."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round a channel count to the nearest multiple of ``divisor``.

    The convention of the MobileNet reference code (and timm): round half up to a multiple of
    ``divisor``, never below ``min_value`` (default ``divisor``), and add one more ``divisor`` when
    rounding lost more than ``1 - round_limit`` of the value.

    Args:
        value: the unrounded channel count.
        divisor: the multiple to round to.
        min_value: lower bound of the result; ``None`` means ``divisor``.
        round_limit: smallest acceptable ``result / value`` before bumping up; ``0`` disables the bump.

    Returns:
        The rounded channel count.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded
