"""`mhub validate NAME.TAG` against a reference implementation builds both models as the weight set says."""

from __future__ import annotations

import torchvision
from conftest import randomly_filled

from mhub import get_registry
from mhub.hub.convert import save_safetensors
from mhub_tools.convert import apply_converter
from mhub_tools.validate import validate


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
