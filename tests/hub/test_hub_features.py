"""create(name, pretrained=True, features_only=True): the backbone's weights load, the head is dropped quietly.

torchvision's resnet18 (random init, randomised BatchNorm) is served on loopback; torchvision's own feature
extractor (``create_feature_extractor``) on the same model is the reference for every level.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import randomise_batchnorm
from hub_fixtures import entry, safetensors_bytes, server_fixture, write_registry  # noqa: F401 (fixtures)

import mhub

torchvision = pytest.importorskip("torchvision")
LEVELS = ["relu", "layer1", "layer2", "layer3", "layer4"]  # timm's resnet levels in torchvision's names


@pytest.fixture
def torchvision_resnet18():
    torch.manual_seed(0)
    return randomise_batchnorm(torchvision.models.resnet18())


@pytest.fixture
def served(torchvision_resnet18, server, tmp_path, monkeypatch):
    from mhub_resnet.convert import from_torchvision

    data = safetensors_bytes(from_torchvision(torchvision_resnet18.state_dict()), tmp_path)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("test_st", [server.add("/resnet18.safetensors", data)], data, model="resnet18"))


def test_pretrained_features_load_the_backbone_and_drop_the_head_quietly(served, torchvision_resnet18):
    from torchvision.models.feature_extraction import create_feature_extractor

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even the "classifier newly initialised" warning for num_classes
        net = mhub.create("resnet18.test_st", pretrained=True, features_only=True, num_classes=10).eval()
    assert not any(key.startswith("classifier.") for key in net.state_dict())
    reference = create_feature_extractor(torchvision_resnet18, return_nodes=LEVELS)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        got, expected = net(x), reference(x)
    assert [t.shape[1] for t in got] == net.feature_info.channels() == [64, 64, 128, 256, 512]
    for tensor, level in zip(got, LEVELS):
        torch.testing.assert_close(tensor, expected[level], rtol=0, atol=1e-4 * max(1.0, expected[level].abs().max()))


def test_pretrained_features_with_one_input_channel(served, torchvision_resnet18):
    net = mhub.create("resnet18.test_st", pretrained=True, features_only=True, in_chans=1, out_indices=(0,)).eval()
    grey = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        tv = torchvision_resnet18
        expected = tv.relu(tv.bn1(tv.conv1(grey.expand(-1, 3, -1, -1))))  # a grey image in RGB
        (got,) = net(grey)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * max(1.0, expected.abs().max()))


def test_unet_encoder_weights_come_through_the_hub(served, torchvision_resnet18, monkeypatch):
    from mhub_unet import UNet
    from torchvision.models.feature_extraction import create_feature_extractor

    model = UNet(backbone="resnet18.test_st", num_classes=2).eval()  # the tag loads that weight set
    reference = create_feature_extractor(torchvision_resnet18, return_nodes=LEVELS)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got, expected = model.backbone.encoder(x), reference(x)
    for tensor, level in zip(got, LEVELS):
        torch.testing.assert_close(tensor, expected[level], rtol=0, atol=1e-4 * max(1.0, expected[level].abs().max()))
    monkeypatch.setenv("MHUB_OFFLINE", "1")  # the default weights are not cached: asking for them must fail
    with pytest.raises(mhub.OfflineError, match="resnet18"):
        UNet(backbone="resnet18", encoder_pretrained=True)
