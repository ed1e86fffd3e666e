"""End to end with Inception v3: a torchvision-layout checkpoint (auxiliary classifier included) on loopback.

The weight set under test copies the converter and ``model_args`` of the real ``inception_v3.tv_in1k`` entry,
so ``mhub.create(..., pretrained=True)`` must behave like torchvision's pretrained model: ImageNet-normalised
inputs in, torchvision's ``transform_input=True`` outputs out.
"""

from __future__ import annotations

import pytest
import torch
from conftest import randomly_filled
from hub_fixtures import entry, pickle_bytes, write_registry
from hub_fixtures import server_fixture  # noqa: F401 (fixtures)
from parity import assert_outputs_close

import mhub
import mhub_registry
from mhub._manifest import load_manifest
from mhub_inception.blocks import InceptionConfigError

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
    assert not hasattr(model, "aux")  # the converter left the auxiliary classifier behind
    x = imagenet_batch()
    reference.transform_input = True
    try:
        with torch.no_grad():
            assert_outputs_close(model(x), reference(x))
    finally:
        reference.transform_input = False

    # so aux_logits=True gets a fresh one, with one warning (as GoogLeNet's, tests/plugins/test_classic_registry.py)
    with pytest.warns(UserWarning) as caught:
        with_aux = mhub.create(served, pretrained=True, aux_logits=True)
    assert [str(w.message) for w in caught if "auxiliary" in str(w.message)] == [
        f"{served}: the weights hold no auxiliary classifier 'aux'; it is newly initialised and needs training"]
    assert torch.equal(with_aux.classifier.fc.weight, model.classifier.fc.weight)
    assert not any(tensor.is_meta for tensor in with_aux.state_dict().values())
    assert with_aux.aux.train()(torch.randn(2, 768, 17, 17)).isfinite().all()


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

    # transform_input renormalises RGB; a grey model says so, and works once it is switched off
    with pytest.raises(InceptionConfigError, match="needs in_chans=3, got 1; pass transform_input=False"):
        mhub.create(served, pretrained=True, in_chans=1)
    grey = mhub.create(served, pretrained=True, in_chans=1, transform_input=False).eval()
    g = imagenet_batch(1)
    with torch.no_grad():
        assert_outputs_close(grey(g), reference(g.expand(-1, 3, -1, -1)))
