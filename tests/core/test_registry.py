"""Name resolution, listing and MHUB_REGISTRY directories."""

import pytest

import mhub
from mhub import NoWeightsError, UnknownModelError, hookimpl, plugins
from mhub._manifest import dump_manifest

DIGEST = "cd" * 32


def manifest_text(model="toynet", tags=("a", "b"), default="b"):
    return dump_manifest([
        {"model": model, "tag": tag, "sources": [f"https://example.invalid/{tag}.safetensors"], "sha256": DIGEST,
         "format": "safetensors", "license": "MIT", "default": tag == default}
        for tag in tags
    ])


class ToyPlugin:
    @staticmethod
    @hookimpl
    def register_models(register):
        register("toynet", "torch.nn:Identity", family="toy")
        register("toynet_big", "torch.nn:Identity", family="toy")
        register("bare", "torch.nn:Identity", family="other")


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy.toml").write_text(manifest_text())
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    plugins.register_plugin(ToyPlugin, "toy-test")
    yield mhub.get_registry()
    plugins.unregister_plugin("toy-test")


def test_names_resolve_to_arch_and_default_or_given_tag(toy):
    arch, weights = toy.resolve("toynet")
    assert arch.name == "toynet" and weights.name == "toynet.b"
    assert toy.resolve("toynet.a")[1].tag == "a"
    assert toy.resolve("bare") == (toy.arch("bare"), None)


def test_unknown_names_suggest_close_matches(toy):
    with pytest.raises(UnknownModelError, match=r"unknown model 'toynt'; did you mean 'toynet'"):
        toy.resolve("toynt")
    with pytest.raises(UnknownModelError, match=r"unknown weight set 'toynet.c'; did you mean"):
        toy.resolve("toynet.c")
    with pytest.raises(NoWeightsError, match="'bare' has no pretrained weights"):
        toy.resolve("bare.x")
    with pytest.raises(NoWeightsError):
        mhub.create("bare", pretrained=True)


def test_list_filters_by_pattern_family_and_pretrained(toy):
    assert toy.list_models(["toy*"]) == ["toynet", "toynet_big"]
    assert toy.list_models(family="other") == ["bare"]
    assert toy.list_models(["toy*"], pretrained=True) == ["toynet.a", "toynet.b"]
    assert mhub.list_models("toynet*", pretrained=True) == ["toynet.a", "toynet.b"]


def test_registry_dir_manifest_for_unknown_arch_is_skipped_with_warning(tmp_path, monkeypatch):
    (tmp_path / "ghost.toml").write_text(manifest_text(model="ghostnet"))
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    with pytest.warns(plugins.PluginWarning, match="ghostnet.[ab]: skipped: unknown architecture 'ghostnet'"):
        assert "ghostnet.a" not in mhub.get_registry().weights


def test_malformed_registry_dir_manifest_warns_and_keeps_the_rest(tmp_path, monkeypatch):
    (tmp_path / "bad.toml").write_text('[[weights]]\nmodel = "toynet"\n')
    (tmp_path / "toy.toml").write_text(manifest_text())
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    plugins.register_plugin(ToyPlugin, "toy-test")
    try:
        with pytest.warns(plugins.PluginWarning, match=r"bad.toml: entry 0 \(toynet.\?\): field 'tag': missing"):
            registry = mhub.get_registry()
        assert "toynet.a" in registry.weights
    finally:
        plugins.unregister_plugin("toy-test")
