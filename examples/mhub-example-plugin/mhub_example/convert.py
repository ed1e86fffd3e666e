"""Key map from the upstream layout (:mod:`mhub_example.upstream`) to TinyNet's.

A pure renaming, written as a table for :func:`mhub.keymap.rename_keys`: ``mhub validate --reference
tinyref:tinynet`` inverts it exactly to feed the upstream model the weights under test, so it must not change
values. A key no rule places is a :class:`mhub.ConversionError` naming it.
"""

from __future__ import annotations

from mhub.keymap import rename_keys

_BLOCK = r"stages\.(\d+)\.(\d+)"
RULES = [
    (r"conv1\.(.+)", r"backbone.stem.conv.\1"),
    (r"bn1\.(.+)", r"backbone.stem.norm.\1"),
    (rf"{_BLOCK}\.conv_a\.(.+)", r"backbone.stages.\1.\2.conv1.conv.\3"),
    (rf"{_BLOCK}\.bn_a\.(.+)", r"backbone.stages.\1.\2.conv1.norm.\3"),
    (rf"{_BLOCK}\.conv_b\.(.+)", r"backbone.stages.\1.\2.conv2.conv.\3"),
    (rf"{_BLOCK}\.bn_b\.(.+)", r"backbone.stages.\1.\2.conv2.norm.\3"),
    (r"head\.(.+)", r"classifier.fc.\1"),
]


def from_tinyref(state: dict) -> dict:
    """``{upstream key: tensor}`` -> ``{tinynet key: tensor}``."""
    return rename_keys(state, RULES, layout="tinyref")
