"""The mlp plugin as mhub sees it: torch-free registration, its manifest, a checkpoint through the hub."""

from __future__ import annotations

import pytest
import torch

import mhub
from conftest import run_cli, serve_locally, upstream_facts
from family_checks import (assert_listed, assert_manifest_is_generated, assert_plugin_imports_without_torch,
                           materialise, on_meta)
from parity import assert_outputs_close
from mhub_mlp import configs


def test_plugin_configs_and_converters_import_without_torch():
    assert_plugin_imports_without_torch("mhub_mlp")


def test_manifest_is_generated_and_every_entry_loads(tmp_path, registry):
    for entry in assert_manifest_is_generated("mlp", tmp_path):
        assert f"{entry['model']}.{entry['tag']}" in registry.weights
        assert entry["converter"] == f"timm.{registry.arch(entry['model']).family}"


def test_every_upstream_weight_set_with_a_known_hash_is_listed(registry):
    facts = [f for f in upstream_facts() if f["model"] in configs.MODELS]
    assert_listed(registry, facts, lambda fact: f"{fact['model']}.{fact['tag']}")


def test_families_and_converters_are_registered(registry):
    for family in ("mlpmixer", "resmlp", "gmlp"):
        expected = sorted(n for n, row in configs.MODELS.items() if configs.FAMILIES[row[0]] == family)
        assert run_cli("list", "--family", family).stdout.split() == expected
        assert registry.converters[f"timm.{family}"].function == configs.CONVERTER


def test_checkpoint_loads_through_the_hub(tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    reference = on_meta(timm.create_model, "gmlp_s16_224")
    reference.blocks = reference.blocks[:2]
    materialise(reference).eval()
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="gmlp_s16_224", converter="timm.gmlp")
    model = mhub.create("gmlp_s16_224.local_test", pretrained=True, num_blocks=2).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        expected = reference(x)
        assert_outputs_close(model(x), expected)
