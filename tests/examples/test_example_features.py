"""A third-party family gains feature extraction, and UNets, by declaring its feature points.

The example plugin (``examples/mhub-example-plugin``) declares ``feature_info`` in its builder and nothing
else; mhub's generic wrapper must then give the upstream implementation's stage outputs. The plugin module is
registered in process, as an installed entry point would be.
"""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import REPO, randomise_batchnorm
from parity import assert_outputs_close

import mhub
from mhub import plugins

EXAMPLE = REPO / "examples" / "mhub-example-plugin"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import mhub_example.plugin

    plugins.register_plugin(mhub_example.plugin, "example-in-process")
    yield
    plugins.unregister_plugin("example-in-process")
    for name in [m for m in sys.modules if m == "mhub_example" or m.startswith("mhub_example.")]:
        del sys.modules[name]


def upstream_stage_outputs(upstream, x):
    out = torch.relu(upstream.bn1(upstream.conv1(x)))
    levels = []
    for stage in upstream.stages:
        for block in stage:
            out = block(out)
        levels.append(out)
    return levels


def test_the_example_family_gains_features_from_its_declaration(example):
    from mhub_example.convert import from_tinyref
    from mhub_example.upstream import build

    torch.manual_seed(0)
    upstream = randomise_batchnorm(build("tinynet", num_classes=10, in_chans=3))
    model = mhub.create("tinynet", num_classes=10)
    model.load_state_dict(from_tinyref(upstream.state_dict()))
    net = mhub.features(model.eval())
    assert net.feature_info.get_dicts(["module", "num_chs", "reduction"]) == [
        {"module": "backbone.stages.0", "num_chs": 8, "reduction": 2},
        {"module": "backbone.stages.1", "num_chs": 16, "reduction": 4}]
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        got, expected = net(x), upstream_stage_outputs(upstream, x)
    for a, b in zip(got, expected, strict=True):
        assert_outputs_close(a, b)
    assert mhub.create("tinynet", features_only=True, out_indices=(-1,)).feature_info.channels() == [16]


def test_a_unet_on_the_example_family(example):
    from mhub_unet import UNet

    model = UNet(backbone="tinynet", num_classes=3, decoder_channels=(16, 8)).eval()
    assert model.backbone.encoder.feature_info.module_name() == ["backbone.stages.0", "backbone.stages.1"]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 24, 40)).shape == (1, 3, 24, 40)
