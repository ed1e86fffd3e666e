"""The inception plugin as mhub sees it: registration, registry/inception.toml against the upstream facts, CLI."""

from __future__ import annotations

import fnmatch

import mhub_registry
from conftest import run_cli, upstream_facts
from family_checks import assert_manifest_is_generated, hashed
from mhub._manifest import load_manifest
from mhub_inception import configs

MANIFEST = mhub_registry.manifest("inception")
UPSTREAM_NAMES = {"legacy_xception": "xception"}  # upstream model -> our architecture, where they differ


def family_facts() -> list[dict]:
    """The facts file's weight sets of our architectures."""
    return [f for f in upstream_facts() if UPSTREAM_NAMES.get(f["model"], f["model"]) in configs.ARCHS]


def test_every_architecture_is_registered(registry):
    for name, (function, defaults, paper, _, num_params) in configs.ARCHS.items():
        arch = registry.arch(name)
        assert arch.family == "inception" and arch.builder == f"mhub_inception.model:{function}"
        assert (dict(arch.defaults), arch.paper, arch.num_params) == (defaults, paper, num_params)
        assert arch.classifier == "classifier.fc"
    assert set(configs.CONVERTERS) <= set(registry.converters)


def test_manifest_is_what_the_generator_writes(tmp_path):
    assert_manifest_is_generated("inception", tmp_path)


def test_every_upstream_weight_set_is_listed_unless_no_hash_is_known(registry):
    specs = {spec.name: spec for spec in load_manifest(MANIFEST)}
    facts = family_facts()
    assert len(facts) == 9  # guards the filter: one per architecture in data/upstream-weights.json
    for fact in facts:
        name = f"{UPSTREAM_NAMES.get(fact['model'], fact['model'])}.{fact['tag']}"
        assert (name in specs) == hashed(fact), name
        if name not in specs:
            continue
        spec = specs[name]
        assert name in registry.weights and spec.converter in configs.CONVERTERS
        assert spec.preprocess["crop"] == 299 and spec.expected_digest
        assert spec.sources == (fact["url"],)
        if fact["source"] == "torchvision":
            assert spec.converter == "torchvision.inception" and spec.sha256 == fact["sha256"]
            assert spec.metrics == {"top1": fact["acc1"], "top5": fact["acc5"]}
            assert spec.preprocess["resize"] == fact["resize_size"] == 342
        else:
            # legacy files that keep TF-slim's background class drop it on conversion
            background = bool(fact.get("url_label_offset"))
            assert spec.converter == ("timm_background.inception" if background else "timm.inception")
            assert spec.sha256_prefix == fact["url_hash_fragment"]
            assert spec.preprocess["crop_pct"] == fact["crop_pct"]
            assert spec.metrics["top1"] == fact["timm_results_imagenet"]["top1"]
        assert spec.license == fact["license"]


def test_torchvision_weights_carry_transform_input_and_only_they_do():
    for spec in load_manifest(MANIFEST):
        torchvision_file = spec.sources[0].startswith("https://download.pytorch.org/")
        assert dict(spec.model_args) == ({"transform_input": True} if torchvision_file else {}), spec.name


def test_cli_lists_and_describes_every_weight_set():
    names = sorted(spec.name for spec in load_manifest(MANIFEST))
    listed = run_cli("list", "--family", "inception", "--pretrained").stdout.split()
    assert sorted(listed) == names
    assert run_cli("list", "--family", "inception").stdout.split() == sorted(configs.ARCHS)
    info = run_cli("info", "inception_v3").stdout
    v3 = [name for name in names if fnmatch.fnmatchcase(name, "inception_v3.*")]
    assert v3 and all(name in info for name in v3)
    assert "transform_input=True" in info and "23,834,568" in info
