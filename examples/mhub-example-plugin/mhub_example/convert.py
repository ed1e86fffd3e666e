"""Key map from the upstream layout (:mod:`mhub_example.upstream`) to TinyNet's.

A pure renaming: ``mhub validate --reference tinyref:tinynet`` inverts it exactly to feed the upstream
model the weights under test, so it must not change values.
"""

from __future__ import annotations

import re

RENAMES = [
    (r"^conv1\.", "backbone.stem.conv."),
    (r"^bn1\.", "backbone.stem.norm."),
    (r"^stages\.(\d+)\.(\d+)\.conv_a\.", r"backbone.stages.\1.\2.conv1.conv."),
    (r"^stages\.(\d+)\.(\d+)\.bn_a\.", r"backbone.stages.\1.\2.conv1.norm."),
    (r"^stages\.(\d+)\.(\d+)\.conv_b\.", r"backbone.stages.\1.\2.conv2.conv."),
    (r"^stages\.(\d+)\.(\d+)\.bn_b\.", r"backbone.stages.\1.\2.conv2.norm."),
    (r"^head\.", "classifier.fc."),
]


def rename(key: str) -> str:
    for pattern, replacement in RENAMES:
        new, count = re.subn(pattern, replacement, key)
        if count:
            return new
    raise KeyError(f"tinyref key '{key}' has no TinyNet counterpart")


def from_tinyref(state: dict) -> dict:
    """``{upstream key: tensor}`` -> ``{tinynet key: tensor}``; an unknown key is an error."""
    return {rename(key): value for key, value in state.items()}
