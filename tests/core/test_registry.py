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


class AliasPlugin:
    @staticmethod
    @hookimpl
    def register_models(register):
        register("toynet", "torch.nn:Identity", family="toy",
                 aliases={"toy_timm_224": None, "toy_timm_384": "a"})


@pytest.fixture
def aliased(tmp_path, monkeypatch):
    (tmp_path / "toy.toml").write_text(manifest_text())
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    plugins.register_plugin(AliasPlugin, "alias-test")
    yield mhub.get_registry()
    plugins.unregister_plugin("alias-test")


def test_aliases_resolve_to_the_architecture_and_their_tag(aliased):
    arch = aliased.arch("toynet")
    assert aliased.resolve("toy_timm_224") == (arch, aliased.weights["toynet.b"])  # the default
    assert aliased.resolve("toy_timm_384") == (arch, aliased.weights["toynet.a"])  # the alias's own tag
    assert aliased.resolve("toy_timm_384.b") == (arch, aliased.weights["toynet.b"])
    assert aliased.canonical("toy_timm_384") == "toynet.a" and aliased.canonical("toy_timm_224") == "toynet.b"
    assert aliased.list_models(["toy_timm*"]) == ["toynet"]
    assert aliased.list_models(["toy_timm_384.*"], pretrained=True) == ["toynet.a", "toynet.b"]
    with pytest.raises(UnknownModelError, match="did you mean 'toy_timm_224'"):
        aliased.resolve("toy_timm_22")


def test_bad_aliases_are_skipped_with_a_warning(tmp_path, monkeypatch):
    class Shadowing:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("toynet", "torch.nn:Identity", family="toy", aliases=["other", "ghost_alias"])
            register("other", "torch.nn:Identity", family="toy", aliases={"ghost_alias2": "nosuchtag"})
            register("third", "torch.nn:Identity", family="toy", aliases={"Bad-Alias": None})

    plugins.register_plugin(Shadowing, "shadow-test")
    try:
        with pytest.warns(plugins.PluginWarning) as caught:
            registry = mhub.get_registry()
        messages = " | ".join(str(w.message) for w in caught)
        assert "alias 'other' of 'toynet' is also an architecture name" in messages
        assert "selects 'other.nosuchtag', which no manifest registers" in messages
        assert "invalid alias 'Bad-Alias'" in messages
        assert registry.resolve("ghost_alias")[0].name == "toynet" and "other" not in registry.aliases
    finally:
        plugins.unregister_plugin("shadow-test")


def test_local_manifests_add_weights_but_cannot_take_over_a_plugin(tmp_path, monkeypatch):
    plugin_dir, local_dir = tmp_path / "plugin", tmp_path / "local"
    plugin_dir.mkdir(), local_dir.mkdir()
    (plugin_dir / "toy.toml").write_text(manifest_text(tags=("a", "b"), default="b"))
    # The local manifest re-registers toynet.b with another source and marks a new tag the default.
    local = manifest_text(tags=("b", "mine"), default="mine").replace("example.invalid/b", "evil.invalid/b")
    (local_dir / "local.toml").write_text(local)

    class PluginWithWeights(ToyPlugin):
        @staticmethod
        @hookimpl
        def register_weights(register):
            register(plugin_dir / "toy.toml")

    monkeypatch.setenv("MHUB_REGISTRY", str(local_dir))
    plugins.register_plugin(PluginWithWeights, "toy-weights")
    try:
        with pytest.warns(plugins.PluginWarning) as caught:
            registry = mhub.get_registry()
        messages = [str(w.message) for w in caught]
        assert any("toynet.b: ignored: plugin 'toy-weights' already registers" in m for m in messages)
        assert any("toynet.mine: 'default = true' ignored" in m for m in messages)
        assert all("\n" not in m for m in messages)
        assert registry.weights["toynet.b"].sources == ("https://example.invalid/b.safetensors",)
        assert registry.resolve("toynet")[1].name == "toynet.b"  # the plugin's default stands
        assert registry.resolve("toynet.mine")[1].tag == "mine"  # the addition is usable by its tag
    finally:
        plugins.unregister_plugin("toy-weights")


def test_a_weight_sets_model_args_reach_the_builder(tmp_path, monkeypatch):
    seen = []

    def builder(**kwargs):
        seen.append(kwargs)
        return kwargs

    class ArgsPlugin:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("argnet", builder, family="toy", defaults={"depth": 2})

    text = dump_manifest([
        {"model": "argnet", "tag": "big", "sources": ["https://example.invalid/x.safetensors"], "sha256": DIGEST,
         "format": "safetensors", "license": "MIT", "model_args": {"img_size": 384}},
        {"model": "argnet", "tag": "plain", "sources": ["https://example.invalid/y.safetensors"], "sha256": DIGEST,
         "format": "safetensors", "license": "MIT", "default": True},
    ])
    (tmp_path / "args.toml").write_text(text)
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    plugins.register_plugin(ArgsPlugin, "args-test")
    try:
        mhub.create("argnet.big")
        mhub.create("argnet.big", img_size=224)
        mhub.create("argnet")
        assert [s.get("img_size") for s in seen] == [384, 224, None]
        assert seen[0] == {"depth": 2, "img_size": 384, "num_classes": 1000, "in_chans": 3}
    finally:
        plugins.unregister_plugin("args-test")


def test_arch_for_gives_a_weight_sets_model_args_to_every_tool(tmp_path, monkeypatch):
    class Plain:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("argnet", "torch.nn:Identity", family="toy", defaults={"depth": 2},
                     aliases={"argnet_timm_384": "big_384"})

    text = dump_manifest([
        {"model": "argnet", "tag": tag, "sources": ["https://example.invalid/x.safetensors"], "sha256": DIGEST,
         "format": "safetensors", "license": "MIT", "model_args": args}
        for tag, args in (("big_384", {"img_size": 384}), ("plain", {}))
    ])
    (tmp_path / "args.toml").write_text(text)
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    plugins.register_plugin(Plain, "arch-for-test")
    try:
        registry = mhub.get_registry()
        assert registry.arch_for("argnet.big_384").defaults == {"depth": 2, "img_size": 384}
        assert registry.arch_for("argnet.big_384", img_size=512).defaults == {"depth": 2, "img_size": 512}
        assert registry.arch_for("argnet").defaults == {"depth": 2}
        assert registry.arch_for("argnet.unregistered_tag").defaults == {"depth": 2}  # a contributor's own
        assert registry.arch_for("argnet_timm_384").defaults["img_size"] == 384
        # upstream's tag through the alias finds our suffixed tag
        assert registry.resolve("argnet_timm_384.big")[1].name == "argnet.big_384"
        assert registry.resolve("argnet_timm_384.plain")[1].name == "argnet.plain"
    finally:
        plugins.unregister_plugin("arch-for-test")


def test_an_architecture_may_default_its_head_size():
    seen = []

    class HeadPlugin:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("segnet", lambda **kw: seen.append(kw), family="toy", defaults={"num_classes": 1, "depth": 3})

    plugins.register_plugin(HeadPlugin, "head-test")
    try:
        mhub.create("segnet")
        mhub.create("segnet", num_classes=4)
        assert seen == [{"depth": 3, "num_classes": 1, "in_chans": 3}, {"depth": 3, "num_classes": 4, "in_chans": 3}]
    finally:
        plugins.unregister_plugin("head-test")


@pytest.mark.parametrize("kwargs, words", [
    ({"num_classes": -1}, "num_classes must be a non-negative integer"),
    ({"num_classes": 2.5}, "num_classes must be a non-negative integer"),
    ({"in_chans": 0}, "in_chans must be a positive integer"),
    ({"drop_paht_rate": 0.1}, "resnet18: unknown argument 'drop_paht_rate'"),
])
def test_bad_create_arguments_are_one_clear_line(kwargs, words):
    with pytest.raises(mhub.MhubError) as info:
        mhub.create("resnet18", **kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_aux_classifiers_are_a_list_of_state_dict_prefixes():
    from mhub import PluginError
    from mhub._registry import Registry

    registry = Registry()
    registry.add_model("toy", "auxnet", "torch.nn:Identity", family="toy", aux_classifiers=["aux1", "aux2"])
    assert registry.archs["auxnet"].aux_classifiers == ("aux1", "aux2")
    for bad in ("aux1", [""], 1):
        with pytest.raises(PluginError, match="aux_classifiers must be a list of state-dict prefixes"):
            registry.add_model("toy", "badnet", "torch.nn:Identity", family="toy", aux_classifiers=bad)


class UpstreamTagPlugin:
    @staticmethod
    @hookimpl
    def register_models(register):
        register("toynet", "torch.nn:Identity", family="toy", aliases={"toy_timm_384": "orig_in1k_384"})


def test_an_alias_takes_upstreams_tag_less_the_size_suffix_and_no_other_part(tmp_path, monkeypatch):
    (tmp_path / "toy.toml").write_text(manifest_text(tags=("orig_in1k_384", "plain"), default="plain"))
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    plugins.register_plugin(UpstreamTagPlugin, "upstream-tag-test")
    try:
        registry = mhub.get_registry()
        assert registry.resolve("toy_timm_384.orig_in1k")[1].name == "toynet.orig_in1k_384"  # upstream's spelling
        assert registry.resolve("toy_timm_384.orig_in1k_384")[1].name == "toynet.orig_in1k_384"
        assert registry.resolve("toy_timm_384.plain")[1].name == "toynet.plain"
        for bogus in ("orig", "orig_in", "orig_in1k_3", "orig_in1k_"):  # prefixes, but not less a size suffix
            with pytest.raises(UnknownModelError, match=rf"unknown weight set 'toynet\.{bogus}'"):
                registry.resolve(f"toy_timm_384.{bogus}")
        with pytest.raises(UnknownModelError):
            mhub.create("toy_timm_384.orig")
    finally:
        plugins.unregister_plugin("upstream-tag-test")


def test_named_weights_says_whether_a_name_names_a_weight_set(aliased):
    assert aliased.named_weights("toynet") is None  # a bare architecture: its default is implied, not named
    assert aliased.named_weights("toynet.a") is aliased.weights["toynet.a"]
    assert aliased.named_weights("toy_timm_384") is aliased.weights["toynet.a"]  # an alias stands for its tag
    assert aliased.named_weights("toy_timm_224") is aliased.weights["toynet.b"]  # ... or for the default
    assert aliased.named_weights("toy_timm_224.a") is aliased.weights["toynet.a"]
    assert aliased.named_weights("toynet.mine") is None  # a tag no manifest registers (a contributor's own)
    assert [aliased.canonical(n) for n in ("toynet", "toynet.a", "toy_timm_384")] == ["toynet", "toynet.a",
                                                                                     "toynet.a"]
    with pytest.raises(UnknownModelError):
        aliased.named_weights("nonet.a")
    with pytest.raises(UnknownModelError):
        aliased.canonical("toynet.mine")  # canonical stays strict


def test_a_family_without_its_manifest_is_reported_not_skipped_quietly():
    import mhub_registry

    class MissingManifest:
        @staticmethod
        @hookimpl
        def register_weights(register):
            mhub_registry.register_manifests(register, "nosuchfamily")

    plugins.register_plugin(MissingManifest, "missing-manifest-test")
    try:
        with pytest.warns(plugins.PluginWarning, match=r"nosuchfamily\.toml: cannot read manifest"):
            mhub.get_registry()
        assert "nosuchfamily.toml" in plugins.plugin_info("missing-manifest-test").status
    finally:
        plugins.unregister_plugin("missing-manifest-test")
