"""The vit plugin as mhub sees it: torch-free registration, its manifest, timm's names, the toolchain."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, upstream_facts
from family_checks import assert_listed, assert_manifest_is_generated, assert_plugin_imports_without_torch, on_meta
from mhub_vit import configs


def vit_facts() -> list[dict]:
    return [f for f in upstream_facts() if f["model"] in configs.MODELS or f["model"] in configs.TIMM_NAMES]


def our_name(fact: dict) -> str:
    model = configs.TIMM_NAMES.get(fact["model"], fact["model"])
    return f"{model}.{fact['tag']}{'_384' if fact['model'].endswith('_384') else ''}"


def test_plugin_configs_and_converters_import_without_torch():
    assert_plugin_imports_without_torch("mhub_vit")


def test_manifest_is_generated_and_every_entry_loads(tmp_path, registry):
    entries = assert_manifest_is_generated("vit", tmp_path)
    for entry in entries:
        assert f"{entry['model']}.{entry['tag']}" in registry.weights
        assert entry["converter"] in configs.CONVERTERS


def test_every_upstream_weight_set_with_a_known_hash_is_listed(registry):
    assert_listed(registry, vit_facts(), our_name)


def test_weight_sets_trained_at_another_size_record_it(registry):
    for fact in vit_facts():
        spec = registry.weights.get(our_name(fact))
        if spec is None:
            continue
        size = fact["min_size"][0] if fact["source"] == "torchvision" else fact["input_size"][-1]
        assert dict(spec.model_args) == ({} if size == 224 else {"img_size": size}), spec.name
    assert registry.weights["vit_b_16.tv_swag_e2e_in1k"].license == "cc-by-nc-4.0"  # SWAG weights' own licence


def test_timm_names_resolve_to_our_architectures(registry):
    listed_384 = {f["model"] for f in vit_facts() if f["model"].endswith("_384") and our_name(f) in registry.weights}
    assert listed_384 == set(configs.TIMM_384_TAGS)  # every listed 384 px weight set has its timm name
    for timm_name, ours in configs.TIMM_NAMES.items():
        if timm_name.endswith("_384") and timm_name not in configs.TIMM_384_TAGS:
            assert timm_name not in registry.aliases  # it would silently give 224 px weights
            continue
        arch, weights = registry.resolve(timm_name)
        assert arch.name == ours
        if timm_name in configs.TIMM_384_TAGS:
            assert weights.name == f"{ours}.{configs.TIMM_384_TAGS[timm_name]}"
    assert run_cli("list", "vit_base*").stdout.split() == ["vit_b_16", "vit_b_32", "vit_b_8"]
    assert json.loads(run_cli("info", "vit_large_patch32_384", "--json").stdout)["name"] == "vit_l_32"


def test_mhub_convert_finds_the_timm_map_when_torchvision_s_refuses(registry):
    timm = pytest.importorskip("timm")
    from mhub_tools.convert import convert_state

    state = on_meta(timm.create_model, "vit_tiny_patch16_224").state_dict()
    match = convert_state(registry.arch("vit_ti_16"), state)
    assert match.converter == "timm.vit@1"
    assert any("torchvision.vit" in note and "no place" in note for note in match.notes)
