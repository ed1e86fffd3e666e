"""End to end with Inception v3: a torchvision-layout checkpoint (auxiliary classifier included) on loopback.

The weight set under test copies the converter and ``model_args`` of the real ``inception_v3.tv_in1k`` entry,
so ``mhub.create(..., pretrained=True)`` must behave like torchvision's pretrained model: ImageNet-normalised
inputs in, torchvision's ``transform_input=True`` outputs out; with ``aux_logits=True`` its trained auxiliary
classifier too; with ``in_chans=1`` the outputs of torchvision's model on the grey image repeated to RGB.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import randomly_filled
from hub_fixtures import entry, pickle_bytes, write_registry
from hub_fixtures import server_fixture  # noqa: F401 (fixtures)
from parity import assert_outputs_close

import mhub
import mhub_registry
from mhub import ConfigError
from mhub._manifest import load_manifest

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def reference():
    """torchvision's Inception v3 as published (auxiliary classifier included), ``transform_input`` off."""
    return randomly_filled(lambda: torchvision.models.inception_v3(init_weights=False, aux_logits=True,
                                                                   transform_input=False))


@pytest.fixture(scope="module")
def checkpoint(reference, tmp_path_factory) -> bytes:
    return pickle_bytes(reference.state_dict(), tmp_path_factory.mktemp("inception"))


@pytest.fixture
def served(checkpoint, server, tmp_path, monkeypatch):
    """``inception_v3.test_tv``: the checkpoint behind the real torchvision entry's converter and model_args."""
    real = next(s for s in load_manifest(mhub_registry.manifest("inception")) if s.name == "inception_v3.tv_in1k")
    url = server.add("/inception_v3-test.pth", checkpoint)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("test_tv", [url], checkpoint, model="inception_v3", format="torch-pickle",
                         converter=real.converter, model_args=dict(real.model_args),
                         preprocess=dict(real.preprocess)))
    return "inception_v3.test_tv"


def imagenet_batch(channels: int = 3) -> torch.Tensor:
    # stands in for an image normalised with the weight set's preprocessing (ImageNet mean and std)
    return torch.randn(1, channels, 299, 299, generator=torch.Generator().manual_seed(2))


def test_pretrained_torchvision_weights_take_imagenet_normalised_inputs(served, reference):
    model = mhub.create(served, pretrained=True).eval()
    assert not hasattr(model, "aux")  # built without the auxiliary classifier: loading leaves the file's out
    x = imagenet_batch()
    reference.transform_input = True
    try:
        with torch.no_grad():
            assert_outputs_close(model(x), reference(x))
    finally:
        reference.transform_input = False


def frozen_training_mode(model: torch.nn.Module) -> torch.nn.Module:
    """Training mode (so both models return their auxiliary logits) with BatchNorm and dropout as in eval mode:
    deterministic, and the module-scoped reference's running statistics stay untouched."""
    model.train()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.Dropout)):
            module.eval()
    return model


def test_aux_logits_load_the_trained_auxiliary_classifier(served, reference):
    # torchvision's file holds a trained auxiliary classifier (torchvision keeps it when loading its weights):
    # aux_logits=True loads it, without the "newly initialised" warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = frozen_training_mode(mhub.create(served, pretrained=True, aux_logits=True))
    assert not [w for w in caught if "auxiliary" in str(w.message)]
    assert torch.equal(model.aux.head.fc.weight, reference.AuxLogits.fc.weight)
    x = imagenet_batch()
    reference.transform_input = True
    try:
        with torch.no_grad():
            logits, aux = model(x)
            expected = frozen_training_mode(reference)(x)
    finally:
        reference.transform_input = False
        reference.eval()
    assert_outputs_close(aux, expected.aux_logits)
    assert_outputs_close(logits, expected.logits)


def test_num_classes_10_and_in_chans_1(served, reference):
    x = imagenet_batch()
    with pytest.warns(UserWarning, match="num_classes=10 differs from the weights' 1000"):
        ten = mhub.create(served, pretrained=True, num_classes=10).eval()
    head = mhub.classifier(ten)
    reference.transform_input, fc = True, reference.fc
    reference.fc = torch.nn.Identity()  # torchvision's pooled features
    try:
        with torch.no_grad():
            assert_outputs_close(head.flatten(head.pool(mhub.backbone(ten)(x))), reference(x))
            assert ten(x).shape == (1, 10)
    finally:
        reference.transform_input, reference.fc = False, fc

    # transform_input reads a grey channel as R, G and B: exactly torchvision's model on the grey image repeated to
    # RGB, with the 3-channel first convolution loaded as it is
    grey = mhub.create(served, pretrained=True, in_chans=1).eval()
    assert mhub.backbone(grey).stem.conv1a.conv.in_channels == 3
    g = imagenet_batch(1)
    reference.transform_input = True
    try:
        with torch.no_grad():
            assert_outputs_close(grey(g), reference(g.expand(-1, 3, -1, -1)))
    finally:
        reference.transform_input = False
    with pytest.raises(ConfigError, match=r"^transform_input re-normalises RGB inputs .*; got in_chans=2$"):
        mhub.create(served, pretrained=True, in_chans=2)
