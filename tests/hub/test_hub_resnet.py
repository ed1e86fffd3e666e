"""End to end with a real architecture: torchvision's resnet18 (random init) served on loopback.

`mhub pull` (the CLI) fetches a torchvision-layout `.pth` and converts it with the ResNet plugin's
"torchvision.resnet" converter, or a safetensors file already in our layout; then
`mhub.create(..., pretrained=True)` must reproduce torchvision's outputs.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import randomise_batchnorm, run_cli
from hub_fixtures import entry, pickle_bytes, safetensors_bytes, write_registry
from hub_fixtures import server_fixture  # noqa: F401 (fixtures)
import mhub

torchvision = pytest.importorskip("torchvision")


@pytest.fixture
def resnet_plugin():
    registry = mhub.get_registry()
    if "resnet18" not in registry.archs or "torchvision.resnet" not in registry.converters:
        pytest.skip("needs the mhub_resnet plugin (resnet18 and the 'torchvision.resnet' converter)")
    return registry


@pytest.fixture
def torchvision_resnet18():
    torch.manual_seed(0)
    return randomise_batchnorm(torchvision.models.resnet18())


@pytest.fixture
def served(resnet_plugin, torchvision_resnet18, server, tmp_path, monkeypatch):
    """resnet18.test_pth (torchvision .pth + converter) and resnet18.test_st (our-layout safetensors)."""
    from mhub_resnet.convert import from_torchvision

    state = {k: v.clone() for k, v in torchvision_resnet18.state_dict().items()}
    pth = pickle_bytes(state, tmp_path)
    st = safetensors_bytes(from_torchvision(state), tmp_path)
    registry = write_registry(
        tmp_path / "registry", monkeypatch,
        entry("test_pth", [server.add("/resnet18-test.pth", pth)], pth, model="resnet18", format="torch-pickle",
              converter="torchvision.resnet"),
        entry("test_st", [server.add("/resnet18-test.safetensors", st)], st, model="resnet18"))
    return registry


def test_cli_pull_then_create_reproduces_torchvision(served, torchvision_resnet18, server, isolated_home):
    env = {"MHUB_REGISTRY": str(served)}
    records = json.loads(run_cli("pull", "resnet18.test_pth", "resnet18.test_st", "--json", env=env).stdout)
    assert records[0]["converted"] == "torchvision.resnet@v1" and records[0]["path"].endswith(".safetensors")
    assert records[1]["converted"] is None
    x = torch.randn(2, 3, 64, 64)
    expected = torchvision_resnet18(x)
    for name in ("resnet18.test_pth", "resnet18.test_st"):
        model = mhub.create(name, pretrained=True).eval()
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    assert server.count("/resnet18-test.pth") == 1 and server.count("/resnet18-test.safetensors") == 1


def test_in_chans_1_on_resnet18(served, torchvision_resnet18):
    grey = mhub.create("resnet18.test_pth", pretrained=True, in_chans=1).eval()
    x = torch.rand(1, 1, 64, 64)
    torch.testing.assert_close(grey(x), torchvision_resnet18(x.expand(-1, 3, -1, -1)), atol=1e-5, rtol=1e-5)


def test_num_classes_10_on_resnet18(served, torchvision_resnet18):
    with pytest.warns(UserWarning, match="num_classes=10 differs from the weights' 1000"):
        model = mhub.create("resnet18.test_pth", pretrained=True, num_classes=10).eval()
    assert mhub.classifier(model).fc.out_features == 10
    x = torch.randn(1, 3, 64, 64)
    feature_map = torch.nn.Sequential(*list(torchvision_resnet18.children())[:-2])(x)  # before avgpool, fc
    torch.testing.assert_close(mhub.backbone(model)(x), feature_map, atol=1e-5, rtol=1e-5)
    assert model(x).shape == (1, 10)


def test_old_checkpoint_without_num_batches_tracked_loads(resnet_plugin, torchvision_resnet18, server, tmp_path,
                                                         monkeypatch):
    """Checkpoints saved before PyTorch 0.4.1 have no ``num_batches_tracked``; BatchNorm defaults it to 0."""
    state = {k: v.clone() for k, v in torchvision_resnet18.state_dict().items() if "num_batches_tracked" not in k}
    pth = pickle_bytes(state, tmp_path)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("old", [server.add("/resnet18-old.pth", pth)], pth, model="resnet18", format="torch-pickle",
                         converter="torchvision.resnet"))
    model = mhub.create("resnet18.old", pretrained=True).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x), torchvision_resnet18(x), atol=1e-5, rtol=1e-5)
    assert int(model.backbone.stem[0].norm.num_batches_tracked) == 0
