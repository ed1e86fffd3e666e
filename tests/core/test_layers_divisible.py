"""make_divisible agrees with timm's implementation and the MobileNetV2 paper's widths."""

import pytest

from mhub.layers import make_divisible


def test_known_mobilenet_widths():
    assert make_divisible(32 * 1.0) == 32
    assert make_divisible(32 * 0.75) == 24
    assert make_divisible(32 * 0.35) == 16  # 8 would lose more than 10%
    assert make_divisible(1280 * 1.4) == 1792


def test_agrees_with_timm_over_a_range():
    helpers = pytest.importorskip("timm.layers.helpers")
    for value in [x / 4 for x in range(1, 2000)]:
        for divisor, min_value, limit in [(8, None, 0.9), (4, 16, 0.0), (16, None, 0.9)]:
            assert make_divisible(value, divisor, min_value, limit) == \
                helpers.make_divisible(value, divisor, min_value, limit)
