"""Converters are pure key maps, reject keys they cannot place, and import without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mhub import ConversionError
from mhub_resnet.convert import from_timm, from_timm_legacy_senet, from_torchvision


def test_keys_move_and_values_pass_through_untouched():
    marker = object()
    out = from_torchvision({"conv1.weight": marker, "bn1.running_var": 1, "layer2.0.downsample.0.weight": 2,
                            "layer2.0.downsample.1.bias": 3, "layer4.2.bn3.weight": 4, "fc.bias": 5})
    assert out == {"backbone.stem.0.conv.weight": marker, "backbone.stem.0.norm.running_var": 1,
                   "backbone.stages.1.0.downsample.conv.weight": 2, "backbone.stages.1.0.downsample.norm.bias": 3,
                   "backbone.stages.3.2.conv3.norm.weight": 4, "classifier.fc.bias": 5}


def test_timm_deep_stem_pooled_shortcut_se_and_res2():
    out = from_timm({"conv1.0.weight": 0, "conv1.4.running_mean": 1, "conv1.6.weight": 2, "bn1.bias": 3,
                     "layer1.0.downsample.1.weight": 4, "layer1.0.downsample.2.weight": 5,
                     "layer3.1.se.fc2.bias": 6, "layer1.0.convs.2.weight": 7, "layer1.0.bns.0.weight": 8})
    assert out == {"backbone.stem.0.conv.weight": 0, "backbone.stem.1.norm.running_mean": 1,
                   "backbone.stem.2.conv.weight": 2, "backbone.stem.2.norm.bias": 3,
                   "backbone.stages.0.0.downsample.conv.weight": 4, "backbone.stages.0.0.downsample.norm.weight": 5,
                   "backbone.stages.2.1.attn.fc2.bias": 6, "backbone.stages.0.0.convs.2.conv.weight": 7,
                   "backbone.stages.0.0.convs.0.norm.weight": 8}


def test_legacy_senet_layout():
    out = from_timm_legacy_senet({"layer0.conv1.weight": 0, "layer0.bn1.weight": 1, "layer1.0.se_module.fc1.weight": 2,
                                  "last_linear.weight": 3})
    assert out == {"backbone.stem.0.conv.weight": 0, "backbone.stem.0.norm.weight": 1,
                   "backbone.stages.0.0.attn.fc1.weight": 2, "classifier.fc.weight": 3}


@pytest.mark.parametrize("convert,key", [(from_torchvision, "layer1.0.conv9.weight"), (from_timm, "head.fc.weight"),
                                         (from_timm_legacy_senet, "layer0.conv2.weight")])
def test_unplaceable_keys_are_conversion_errors_naming_them(convert, key):
    with pytest.raises(ConversionError, match=key.replace(".", r"\.")):
        convert({key: 0})


def test_plugin_and_converters_import_without_torch():
    code = ("import sys, mhub_resnet.plugin, mhub_resnet.convert, mhub_resnet.configs; "
            "bad = [m for m in ('torch', 'requests', 'safetensors', 'huggingface_hub') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
