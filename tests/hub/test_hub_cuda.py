"""On a GPU: a pretrained model loaded from the memory-mapped cache moves to CUDA and matches the CPU."""

from __future__ import annotations

import pytest
import torch
from hub_fixtures import entry, pickle_bytes, tiny_checkpoint, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
import mhub

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("tiny_plugin"),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_pretrained_model_moves_to_cuda_and_matches_cpu(server, tmp_path, monkeypatch):
    reference, state = tiny_checkpoint(seed=3, layout="tv")
    data = pickle_bytes(state, tmp_path)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("gpu", [server.add("/gpu.pth", data)], data, format="torch-pickle",
                         converter="tests.tinytv", num_classes=5))
    model = mhub.create("tinynet.gpu", pretrained=True, in_chans=1).eval()
    x = torch.rand(4, 1, 32, 32)
    cpu = model(x)
    gpu = model.cuda()(x.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cpu, reference(x.expand(-1, 3, -1, -1)), atol=1e-5, rtol=1e-5)
    assert all(p.is_cuda for p in model.parameters()) and all(b.is_cuda for b in model.buffers())


def test_resnet18_on_cuda_matches_torchvision_on_cuda(server, tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    registry = mhub.get_registry()
    if "resnet18" not in registry.archs or "torchvision.resnet" not in registry.converters:
        pytest.skip("needs the mhub_resnet plugin (resnet18 and the 'torchvision.resnet' converter)")
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    data = pickle_bytes(tv.state_dict(), tmp_path)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("gpu", [server.add("/r18.pth", data)], data, model="resnet18", format="torch-pickle",
                         converter="torchvision.resnet"))
    model = mhub.create("resnet18.gpu", pretrained=True).eval().cuda()
    x = torch.rand(2, 3, 128, 128, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv.cuda()(x), atol=1e-4, rtol=1e-4)
