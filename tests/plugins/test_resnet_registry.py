"""registry/resnet.toml: every entry validates, covers the upstream facts, and loads end to end."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import randomise_batchnorm, run_cli, serve_locally, upstream_facts
from parity import assert_outputs_close, own_size_input

import mhub
import mhub_registry
from mhub._manifest import load_manifest
from mhub_resnet import configs

MANIFEST = mhub_registry.manifest("resnet")


def test_every_entry_validates_and_names_a_registered_architecture_and_converter(registry):
    specs = load_manifest(MANIFEST)
    assert specs
    for spec in specs:
        assert spec.model in configs.MODELS, spec.name
        assert registry.arch(spec.model).family == "resnet"
        assert spec.converter in configs.CONVERTERS, spec.name
        # Cadene's SENet layout needs its own key map; torchvision's layout is a subset of timm's ResNet.
        assert (spec.converter == "timm.legacy_senet") == spec.model.startswith("legacy_"), spec.name
        assert spec.sha256 or spec.sha256_prefix
        assert spec.name in registry.weights, spec.name  # nothing was dropped when the registry was built
    defaults = {}
    for spec in specs:
        defaults[spec.model] = defaults.get(spec.model, 0) + spec.default
    assert set(defaults.values()) == {1}, "each architecture has exactly one default weight set"


def test_every_torchvision_weight_set_is_listed_with_its_hash_and_metrics(registry):
    specs = {s.name: s for s in load_manifest(MANIFEST)}
    for fact in upstream_facts():
        if fact["source"] != "torchvision" or fact["model"] not in configs.MODELS:
            continue
        spec = specs[f"{fact['model']}.{fact['tag']}"]
        assert spec.sources == (fact["url"],)
        assert spec.expected_digest.startswith(fact["sha256_prefix"])
        assert spec.metrics["top1"] == fact["acc1"]
        assert spec.preprocess["crop"] == fact["crop_size"]
        assert spec.default == fact["is_default"]


def test_timm_weight_sets_with_a_known_hash_are_listed():
    names = {s.name for s in load_manifest(MANIFEST)}
    tv_urls = {f["url"] for f in upstream_facts() if f["source"] == "torchvision"}
    for fact in upstream_facts():
        if fact["source"] != "timm" or fact["model"] not in configs.MODELS or fact.get("url") in tv_urls:
            continue
        hashed = fact.get("url_hash_fragment") or (fact.get("sha256") and fact.get("sha256_revision"))
        assert (f"{fact['model']}.{fact['tag']}" in names) == bool(hashed), fact["model"]


def test_mhub_list_shows_the_resnext_weights():
    expected = sorted(s.name for s in load_manifest(MANIFEST) if s.model.startswith("resnext"))
    assert "resnext101_32x8d.tv2_in1k" in expected and "resnext101_32x8d.fb_wsl_ig1b_ft_in1k" in expected
    listed = run_cli("list", "resnext*", "--pretrained").stdout.split()
    assert listed == expected
    assert json.loads(run_cli("list", "resnext*", "--pretrained", "--json").stdout) == expected


def test_pretrained_torchvision_checkpoint_loads_through_the_converter(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = randomise_batchnorm(torchvision.models.resnet18())
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="resnet18", converter="torchvision.resnet")
    model = mhub.create("resnet18.local_test", pretrained=True).eval()
    x = own_size_input("resnet18.local_test")
    with torch.no_grad():
        assert_outputs_close(model(x), reference(x))
    with pytest.warns(UserWarning, match="newly initialised"):
        adapted = mhub.create("resnet18.local_test", pretrained=True, num_classes=10, in_chans=1).eval()
    assert adapted(torch.randn(1, 1, 64, 64)).shape == (1, 10)


def test_high_level_pretrained_loads_the_default_weights_of_a_timm_model(tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    from mhub_resnet.model import SEResNet

    torch.manual_seed(0)
    assert not mhub.get_registry().tags("seresnet18")  # only the local manifest below gives it weights
    reference = randomise_batchnorm(timm.create_model("seresnet18"))
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="seresnet18", converter="timm.resnet",
                  default=True)
    model = SEResNet(18, pretrained=True).eval()
    x = own_size_input("seresnet18")
    with torch.no_grad():
        assert_outputs_close(model(x), reference(x))
