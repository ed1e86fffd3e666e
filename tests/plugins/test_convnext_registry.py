"""The convnext plugin as mhub sees it: torch-free registration, its manifest, checkpoints through the hub."""

from __future__ import annotations

import pytest
import torch

import mhub
from conftest import run_cli, serve_locally, upstream_facts
from family_checks import (assert_listed, assert_manifest_is_generated, assert_plugin_imports_without_torch,
                           randomise)
from parity import assert_outputs_close
from mhub_convnext import configs


def test_plugin_configs_and_converters_import_without_torch():
    assert_plugin_imports_without_torch("mhub_convnext")


def test_manifest_is_generated_and_every_entry_loads(tmp_path, registry):
    for entry in assert_manifest_is_generated("convnext", tmp_path):
        assert f"{entry['model']}.{entry['tag']}" in registry.weights
        assert entry["converter"] in configs.CONVERTERS


def test_every_upstream_weight_set_with_a_known_hash_is_listed(registry):
    facts = [f for f in upstream_facts() if f["model"] in configs.CONVNEXT or f["model"] in configs.CONVMIXER]
    assert_listed(registry, facts, lambda fact: f"{fact['model']}.{fact['tag']}")
    assert registry.weights["convnext_tiny.tv_in1k"].default


def test_families_and_converters_are_registered(registry):
    assert run_cli("list", "--family", "convmixer").stdout.split() == sorted(configs.CONVMIXER)
    assert {registry.arch(name).family for name in configs.CONVNEXT} == {"convnext"}
    assert {"torchvision.convnext", "timm.convnext", "timm.convmixer"} <= set(registry.converters)


def test_checkpoints_load_through_the_hub(tmp_path, monkeypatch):
    """torchvision- and timm-layout pickles behind file:// sources are pulled, converted and loaded; the head
    and first convolution adapt to other class and channel counts."""
    tv_convnext = pytest.importorskip("torchvision.models.convnext")

    torch.manual_seed(0)
    dims = [96, 192, 384, 768]
    blocks = [tv_convnext.CNBlockConfig(d, n, 1) for d, n in zip(dims, dims[1:] + [None])]
    reference = randomise(tv_convnext.ConvNeXt(blocks))
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="convnext_tiny",
                  converter="torchvision.convnext")
    model = mhub.create("convnext_tiny.local_test", pretrained=True, depths=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-5)
    with pytest.warns(UserWarning, match="newly initialised"):
        adapted = mhub.create("convnext_tiny.local_test", pretrained=True, depths=(1, 1, 1, 1), num_classes=5,
                              in_chans=1)
    assert adapted(torch.randn(1, 1, 64, 64)).shape == (1, 5)


def test_convmixer_checkpoint_loads_through_the_hub(tmp_path, monkeypatch):
    timm_convmixer = pytest.importorskip("timm.models.convmixer")

    torch.manual_seed(0)
    reference = randomise(timm_convmixer.ConvMixer(768, 2, kernel_size=7, patch_size=7, act_layer=torch.nn.ReLU))
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="convmixer_768_32", converter="timm.convmixer")
    model = mhub.create("convmixer_768_32.local_test", pretrained=True, depth=2).eval()
    x = torch.randn(1, 3, 56, 56)
    with torch.inference_mode():
        expected = reference(x)
        assert_outputs_close(model(x), expected)
