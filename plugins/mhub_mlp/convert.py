"""Key map from timm's ``MlpMixer`` checkpoints (MLP-Mixer, ResMLP, gMLP) to mhub's layout (torch-free).

mhub layout: ``backbone.stem.proj``, ``backbone.blocks.<i>.<part>``, ``backbone.norm``, ``classifier.fc``, with
block parts as timm names them (``norm1``, ``mlp_tokens``, ``norm2``, ``mlp_channels``; ResMLP's
``linear_tokens`` and LayerScales ``ls1``/``ls2``; gMLP's ``norm`` and ``mlp_channels.gate.{norm,proj}``).
timm keeps ResMLP's LayerScales as bare parameters; ours are :class:`mhub.layers.LayerScale` modules
(``ls1.gamma``), so the map renames them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mhub.keymap import PARAM, rename_keys

_NORM = r"(weight|bias|alpha|beta)"  # LayerNorm or ResMLP's Affine
TIMM_RULES = [
    (rf"stem\.proj\.{PARAM}", r"backbone.stem.proj.\1"),
    (rf"blocks\.(\d+)\.(norm1|norm2|norm)\.{_NORM}", r"backbone.blocks.\1.\2.\3"),
    (rf"blocks\.(\d+)\.(mlp_tokens|mlp_channels)\.(fc1|fc2)\.{PARAM}", r"backbone.blocks.\1.\2.\3.\4"),
    (rf"blocks\.(\d+)\.mlp_channels\.gate\.(norm|proj)\.{PARAM}", r"backbone.blocks.\1.mlp_channels.gate.\2.\3"),
    (rf"blocks\.(\d+)\.linear_tokens\.{PARAM}", r"backbone.blocks.\1.linear_tokens.\2"),
    (r"blocks\.(\d+)\.(ls1|ls2)", r"backbone.blocks.\1.\2.gamma"),
    (rf"norm\.{_NORM}", r"backbone.norm.\1"),
    (rf"head\.{PARAM}", r"classifier.fc.\1"),
]


def from_timm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """timm ``MlpMixer`` (mixer_*, resmlp_*, gmlp_*) to mhub.

    Raises:
        ConversionError: keys with no place in the mhub layout (e.g. Facebook's original ResMLP layout, which timm
            renames when it loads those files).
    """
    return rename_keys(state_dict, TIMM_RULES, layout="timm MLP-Mixer/ResMLP/gMLP")
