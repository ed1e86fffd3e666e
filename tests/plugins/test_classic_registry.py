"""registry/classic.toml against the upstream facts, the CLI over it, and pretrained loading over loopback.

Pretrained loading is exercised end to end for every architecture: a torchvision ``.pth`` served on 127.0.0.1,
pulled, converted by ``torchvision.classic``, loaded with ``in_chans=1`` / ``num_classes=10``. AlexNet's and VGG's
4096-wide dense layers are generated 64 wide (the manifest entry passes ``hidden``), so the largest checkpoints
are DenseNet-161's (115 MB) and VGG-19's convolutions (80 MB), each saved and served once.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
import torch.nn.functional as F
from classic_reference import torchvision_model
from conftest import run_cli, upstream_facts
from family_checks import assert_manifest_is_generated, assert_plugin_imports_without_torch
from loopback import LoopbackServer
from parity import assert_outputs_close
from torch import nn

import mhub
import mhub_registry
from mhub import _registry
from mhub._manifest import dump_manifest, load_manifest
from mhub_classic import configs

torchvision = pytest.importorskip("torchvision")
MANIFEST = mhub_registry.manifest("classic")
FAMILY_MODELS = ("alexnet", "vgg", "squeezenet", "densenet", "googlenet")
SMALL_HIDDEN = [64, 64]


def torchvision_features(name: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's backbone: what our ``mhub.backbone(model)`` must compute."""
    if name == "googlenet":
        return nn.Sequential(*list(model.children())[:-3])(x)  # all but avgpool, dropout, fc
    if name.startswith("densenet"):
        return F.relu(model.features(x))  # torchvision applies the last ReLU in forward
    return model.features(x)


def classic_facts(source: str) -> list[dict]:
    return [f for f in upstream_facts() if f["source"] == source and f["model"].startswith(FAMILY_MODELS)]


# -- the manifest ---------------------------------------------------------------------------------------------
def test_plugin_configs_and_converters_import_without_torch():
    assert_plugin_imports_without_torch("mhub_classic")


def test_manifest_is_what_the_generator_writes(tmp_path):
    assert_manifest_is_generated("classic", tmp_path)


def test_every_entry_validates_and_names_a_registered_architecture_and_converter(registry):
    specs = load_manifest(MANIFEST)
    for spec in specs:
        assert spec.model in configs.ARCHS and registry.arch(spec.model).family == "classic", spec.name
        assert spec.converter in configs.CONVERTERS, spec.name
        assert spec.name in registry.weights, spec.name  # nothing was dropped when the registry was built
    defaults = {}
    for spec in specs:
        defaults[spec.model] = defaults.get(spec.model, 0) + spec.default
    assert defaults.keys() == configs.ARCHS.keys() and set(defaults.values()) == {1}


def test_every_torchvision_weight_set_is_listed_with_its_hash_metrics_and_preprocessing():
    specs = {s.name: s for s in load_manifest(MANIFEST)}
    facts = classic_facts("torchvision")
    assert len(facts) == 17
    for fact in facts:
        spec = specs.pop(f"{fact['model']}.{fact['tag']}")
        assert spec.sources == (fact["url"],) and spec.expected_digest.startswith(fact["sha256_prefix"])
        assert spec.metrics.get("top1") == fact.get("acc1") and spec.default == fact["is_default"]
        assert (spec.preprocess["crop"], spec.preprocess["mean"], spec.preprocess["std"]) == \
            (fact["crop_size"], fact["mean"], fact["std"])
        assert spec.num_classes == (1000 if fact["classifier_usable"] else 0)
    assert list(specs) == ["densenet121.ra_in1k"]  # timm's own training; its other densenets are these files


def test_timm_densenet_weight_sets_are_listed_or_are_torchvision_files():
    specs = {s.name: s for s in load_manifest(MANIFEST)}
    tv_urls = {f["url"] for f in classic_facts("torchvision")}
    facts = [f for f in classic_facts("timm") if f["model"].startswith("densenet")]
    assert len(facts) == 4
    for fact in facts:
        name = f"{fact['model']}.{fact['tag']}"
        listed = name in specs and specs[name].converter == "timm.classic"  # timm's tv_in1k share torchvision's names
        assert listed != (fact["url"] in tv_urls), name
    ra = specs["densenet121.ra_in1k"]
    assert ra.converter == "timm.classic" and ra.preprocess["interpolation"] == "bicubic"
    assert (ra.preprocess["test_size"], ra.metrics["top1"]) == (288, 75.574)


def test_weight_set_properties_travel_as_model_args():
    specs = {s.name: s for s in load_manifest(MANIFEST)}
    assert specs["googlenet.tv_in1k"].model_args == {"transform_input": True}
    features = specs["vgg16.tv_features_in1k"]
    assert (features.num_classes, features.converter, features.model_args) == \
        (0, "torchvision.classic_features", {"hidden": []})
    assert all(not s.model_args for n, s in specs.items() if n not in ("googlenet.tv_in1k", "vgg16.tv_features_in1k"))


def test_cli_lists_the_family_and_shows_the_weight_sets():
    expected = sorted(s.name for s in load_manifest(MANIFEST))
    listed = run_cli("list", "--family", "classic", "--pretrained").stdout.split()
    assert listed == expected and len(listed) == 18
    info = json.loads(run_cli("info", "vgg16_bn", "--json").stdout)
    assert info["family"] == "classic" and info["num_params"] == 138365992
    assert [f"{w['model']}.{w['tag']}" for w in info["weights"]] == ["vgg16_bn.tv_in1k"]
    text = run_cli("info", "vgg16").stdout
    assert "vgg16.tv_in1k" in text and "vgg16.tv_features_in1k" in text and "headless" in text


# -- pretrained loading over loopback ----------------------------------------------------------------------------
def small_reference(name: str) -> tuple[nn.Module, dict]:
    """A random torchvision ``name`` (dense layers 64 wide for AlexNet/VGG) and the model_args its entry needs."""
    if name.startswith(("alexnet", "vgg")):
        return torchvision_model(name, hidden=SMALL_HIDDEN), {"hidden": SMALL_HIDDEN}
    return torchvision_model(name), {}


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def serve(server, tmp_path, monkeypatch, name: str, state: dict, **entries: dict) -> None:
    """Serve ``state`` as a torchvision ``.pth`` on loopback and register it as ``name.<tag>`` for each of
    ``entries`` (extra manifest fields) through ``MHUB_REGISTRY``."""
    checkpoint = tmp_path / f"{name}.pth"
    torch.save(state, checkpoint)
    data = checkpoint.read_bytes()
    url = server.add(f"/{name}.pth", data)
    common = {"model": name, "sources": [url], "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
              "format": "torch-pickle", "converter": "torchvision.classic", "license": "BSD-3-Clause"}
    manifests = tmp_path / "registry"
    manifests.mkdir()
    (manifests / "local.toml").write_text(dump_manifest([{**common, "tag": tag, **fields}
                                                         for tag, fields in entries.items()]))
    monkeypatch.setenv("MHUB_REGISTRY", str(manifests))
    _registry.reset_registry()


@pytest.mark.parametrize("name", list(configs.ARCHS))
def test_pretrained_loading_adapts_in_chans_and_num_classes(name, server, tmp_path, monkeypatch):
    reference, model_args = small_reference(name)
    serve(server, tmp_path, monkeypatch, name, reference.state_dict(), test={"model_args": model_args})
    x = torch.rand(1, 1, 96, 96, generator=torch.Generator().manual_seed(5))
    grey = mhub.create(f"{name}.test", pretrained=True, in_chans=1).eval()
    with pytest.warns(UserWarning, match="num_classes=10 differs from the weights' 1000"):
        ten = mhub.create(f"{name}.test", pretrained=True, num_classes=10).eval()
    rgb = x.expand(-1, 3, -1, -1)
    with torch.no_grad():
        expected = reference(rgb)
        assert_outputs_close(grey(x), expected)
        features = torchvision_features(name, reference, rgb)
        assert_outputs_close(mhub.backbone(ten)(rgb), features)
        assert ten(rgb).shape == (1, 10)
    assert server.count(f"/{name}.pth") == 1


def test_googlenet_weight_set_applies_transform_input_like_torchvision(server, tmp_path, monkeypatch):
    reference = torchvision_model("googlenet")
    real = mhub.get_registry().weights["googlenet.tv_in1k"]
    serve(server, tmp_path, monkeypatch, "googlenet", reference.state_dict(),
          test={"model_args": dict(real.model_args), "preprocess": dict(real.preprocess)})
    model = mhub.create("googlenet.test", pretrained=True).eval()
    assert isinstance(model.backbone.transform, nn.Module)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(6))  # ImageNet-normalised input
    reference.transform_input = True  # what torchvision's googlenet() sets for its weights
    with torch.no_grad():
        expected = reference(x)
        assert_outputs_close(model(x), expected)
        reference.transform_input = False
        assert (reference(x) - expected).abs().max() > 1e-2  # the transform matters
    explicit = mhub.create("googlenet.test", pretrained=True, transform_input=False)  # user kwargs win
    assert "transform" not in explicit.backbone._modules
    # A grey channel is read as R, G and B: torchvision's model on the grey image repeated to RGB, exactly, with
    # the 3-channel conv1 loaded as it is; other channel counts have no per-channel transform
    grey = mhub.create("googlenet.test", pretrained=True, in_chans=1).eval()
    assert grey.backbone.conv1.conv.in_channels == 3
    g = x[:, :1]
    reference.transform_input = True
    with torch.no_grad():
        assert_outputs_close(grey(g), reference(g.expand(-1, 3, -1, -1)))
    with pytest.raises(mhub.ConfigError, match=r"^transform_input re-normalises RGB inputs .*; got in_chans=4$"):
        mhub.create("googlenet.test", pretrained=True, in_chans=4)
    # Auxiliary classifiers: the file holds no trained ones (torchvision documents them as untrained, unlike
    # Inception v3's, tests/hub/test_hub_inception.py), so they are fresh on top of the pretrained weights, with
    # one warning
    with pytest.warns(UserWarning) as caught:
        with_aux = mhub.create("googlenet.test", pretrained=True, aux_logits=True)  # GoogLeNet(...) calls this
    assert [str(w.message) for w in caught if "auxiliary" in str(w.message)] == [
        "googlenet.test: the weights hold no auxiliary classifiers 'aux1', 'aux2'; they are newly initialised and "
        "need training"]
    assert not any(tensor.is_meta for tensor in with_aux.state_dict().values())
    with torch.no_grad():
        assert_outputs_close(with_aux.eval()(x), expected)
    outputs = with_aux.train()(x)
    assert outputs._fields == ("logits", "aux_logits2", "aux_logits1") and outputs.aux_logits1.shape == (1, 1000)


def test_vgg16_features_weights_load_headless(server, tmp_path, monkeypatch):
    # upstream's classifier is not usable: a narrow stand-in keeps the file at 60 MB; the converter drops it
    reference = torchvision_model("vgg16", hidden=[2, 2])
    real = mhub.get_registry().weights["vgg16.tv_features_in1k"]
    fields = {k: v for k, v in real.to_dict().items() if k in ("num_classes", "converter", "model_args", "preprocess")}
    serve(server, tmp_path, monkeypatch, "vgg16", reference.state_dict(), test_features=fields)
    headless = mhub.create("vgg16.test_features", pretrained=True).eval()
    assert list(headless.classifier._modules) == ["pool", "flatten"]
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))  # (224 px parity: test_classic_models)
    with torch.no_grad():
        expected = torch.flatten(F.adaptive_avg_pool2d(reference.features(x), 7), 1)
        assert_outputs_close(headless(x), expected)
    with pytest.warns(UserWarning, match="num_classes=10 differs from the weights' 0"):
        probe = mhub.create("vgg16.test_features", pretrained=True, num_classes=10)
    assert probe.classifier.fc.in_features == 512 * 7 * 7 and probe.classifier.fc.out_features == 10
