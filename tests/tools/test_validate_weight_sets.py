"""`mhub validate NAME.TAG` against a reference implementation builds both models as the weight set says."""

from __future__ import annotations

import pytest
import torchvision
import toy_models
from conftest import randomly_filled

from mhub import get_registry, hookimpl, plugins
from mhub._manifest import dump_manifest
from mhub.hub.convert import save_safetensors
from mhub_tools.convert import apply_converter
from mhub_tools.validate import build_library_model, validate


def test_googlenet_weight_set_validates_against_torchvision_with_its_model_args(tmp_path):
    """torchvision's GoogLeNet weights need transform_input=True (the weight set's model_args) and carry
    auxiliary heads our converter drops: the reference model gets the same argument, the dropped heads stay
    zero (an eval-mode forward never uses them), and the outputs agree."""
    upstream = randomly_filled(lambda: torchvision.models.googlenet(weights=None, aux_logits=True,
                                                                   transform_input=True, init_weights=False))
    registry = get_registry()
    spec = registry.weights["googlenet.tv_in1k"]
    assert spec.model_args == {"transform_input": True}
    ours = apply_converter(registry.converter(spec.converter), upstream.state_dict())
    path = tmp_path / "googlenet.safetensors"
    save_safetensors(ours, path)
    lines: list[str] = []
    report = validate("googlenet.tv_in1k", path, reference="torchvision:googlenet", log=lines.append)
    assert report.passed, [c.line() for c in report.comparisons]
    assert any("drops" in line and "aux1" in line for line in lines), lines


def test_reference_builders_receive_model_args_they_accept_and_build_without_others(monkeypatch):
    from mhub_tools import validate as validate_module

    calls = []
    real = torchvision.models.get_model

    def spy(name, **kwargs):
        calls.append(kwargs)
        return real(name, **kwargs)

    monkeypatch.setattr(torchvision.models, "get_model", spy)
    lines: list[str] = []
    model = validate_module.build_library_model("torchvision", "googlenet", 1000, 3, {"transform_input": True},
                                                log=lines.append)
    assert model.transform_input and calls[-1]["transform_input"] is True and not lines
    model = validate_module.build_library_model("torchvision", "alexnet", 1000, 3, {"img_size": 384},
                                                log=lines.append)
    assert "img_size" not in calls[-1] and "built without {'img_size': 384}" in lines[-1]


def test_inception_v3_weight_set_validates_with_its_trained_auxiliary_classifier(tmp_path):
    """torchvision's Inception v3 weights carry a trained auxiliary classifier, which our converter keeps: the
    model under test (built without it) leaves it out as pretrained loading does, and mapping back gives it to the
    reference model; a file without it (saved from a model built without) validates too."""
    upstream = randomly_filled(lambda: torchvision.models.inception_v3(weights=None, aux_logits=True,
                                                                       transform_input=True, init_weights=False))
    registry = get_registry()
    spec = registry.weights["inception_v3.tv_in1k"]
    ours = apply_converter(registry.converter(spec.converter), upstream.state_dict())
    assert any(key.startswith("aux.") for key in ours)
    for label, state in (("with_aux", ours), ("without_aux", {k: v for k, v in ours.items()
                                                              if not k.startswith("aux.")})):
        path = tmp_path / f"inception_v3-{label}.safetensors"
        save_safetensors(state, path)
        lines: list[str] = []
        report = validate("inception_v3.tv_in1k", path, reference="torchvision:inception_v3", log=lines.append)
        assert report.passed, (label, [c.line() for c in report.comparisons])
        assert any("drops" in line and "AuxLogits" in line for line in lines) == (label == "without_aux"), lines


def test_an_alias_validates_with_the_weight_set_it_names(tmp_path, monkeypatch):
    """``mhub validate ALIAS`` takes the weight set the alias stands for (as ``mhub.create`` does): its
    model_args build our model and the reference model alike, and its crop is the reference input size."""
    seen: list[dict] = []

    def toyref(name, *, num_classes, in_chans, **model_args):
        seen.append(model_args)
        model = toy_models.upstream_toy(num_classes, in_chans)
        scale = model_args.get("logit_scale", 1.0)  # toynet's architecture argument, upstream's way
        model.register_forward_hook(lambda module, inputs, output: output * scale)
        return model

    class AliasedToy:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("aliasnet", toy_models.build_toynet, family="toy", first_conv="backbone.stem.0",
                     classifier="classifier.fc", aliases={"aliasnet_up_48": "big_48"})

        @staticmethod
        @hookimpl
        def register_converters(register):
            register("toyref.toy", toy_models.convert_torchvision_toy)

        @staticmethod
        @hookimpl
        def register_reference_models(register):
            register("toyref", toyref)

    entry = {"model": "aliasnet", "sources": ["https://example.invalid/x.safetensors"], "sha256": "cd" * 32,
             "format": "safetensors", "license": "MIT", "num_classes": 10}
    (tmp_path / "toy.toml").write_text(dump_manifest([
        {**entry, "tag": "big_48", "model_args": {"logit_scale": 2.0}, "preprocess": {"crop": 48}},
        {**entry, "tag": "plain", "default": True, "preprocess": {"crop": 32}},
    ]))
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path))
    path = tmp_path / "aliasnet.safetensors"
    save_safetensors(toy_models.convert_torchvision_toy(toy_models.trained_upstream_state(num_classes=10)), path)
    plugins.register_plugin(AliasedToy, "aliased-toy")
    try:
        assert get_registry().named_weights("aliasnet_up_48").name == "aliasnet.big_48"
        for name in ("aliasnet_up_48", "aliasnet.big_48"):
            seen.clear()
            report = validate(name, path, reference="toyref:up")
            assert seen == [{"logit_scale": 2.0}], name  # not the default set's (no model_args)
            assert "2x3x48x48" in report.reference, report.reference  # the set's crop, not the default's 32
            assert report.passed, [c.line() for c in report.comparisons]
        seen.clear()
        report = validate("aliasnet", path, reference="toyref:up")  # the bare architecture: the default set
        assert seen == [{}] and "2x3x32x32" in report.reference and report.passed
        # --model-arg goes over the weight set's model_args, once, for both models
        seen.clear()
        report = validate("aliasnet_up_48", path, reference="toyref:up", model_args={"logit_scale": 3.0})
        assert seen == [{"logit_scale": 3.0}] and report.passed
    finally:
        plugins.unregister_plugin("aliased-toy")


def test_only_a_refused_model_arg_makes_a_reference_build_again_without_them():
    def broken(name, *, num_classes, in_chans, **model_args):
        raise TypeError("unsupported operand type(s) for *: 'NoneType' and 'int'")  # a bug, not a refusal

    def strict(name, *, num_classes, in_chans):
        return torchvision.models.alexnet(num_classes=num_classes)

    class Builders:
        @staticmethod
        @hookimpl
        def register_reference_models(register):
            register("brokenref", broken)
            register("strictref", strict)

    plugins.register_plugin(Builders, "reference-builders")
    try:
        with pytest.raises(TypeError, match="unsupported operand"):
            build_library_model("brokenref", "x", 10, 3, {"img_size": 384})
        lines: list[str] = []
        model = build_library_model("strictref", "x", 10, 3, {"img_size": 384}, log=lines.append)
        assert model.classifier[-1].out_features == 10
        assert len(lines) == 1 and "built without {'img_size': 384}" in lines[0] and "unexpected keyword" in lines[0]
    finally:
        plugins.unregister_plugin("reference-builders")
