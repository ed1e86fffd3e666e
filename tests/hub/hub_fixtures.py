"""Shared pieces for the hub tests: a tiny registered architecture, manifests, servers, subprocess runs.

The tiny model has the shape every mhub model has (backbone + classifier) plus a non-persistent buffer,
so loading must materialise it. ``tinytv_to_ours`` is a converter from a torchvision-like key layout.
Subprocess tests run ``python -m hub_fixtures pull ...`` which registers the same plugin first.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

import mhub
from mhub import plugins
from mhub._manifest import dump_manifest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
PLUGIN_NAME = "hub-tests-tiny"


# -- the tiny architecture (torch imported lazily so `python -m hub_fixtures` starts fast) ------------
def tiny_net(num_classes: int = 1000, in_chans: int = 3, width: int = 8):
    """conv-bn-scale-relu-pool backbone + linear head; ``scale.factor`` is a non-persistent buffer."""
    import torch
    from torch import nn

    class Scale(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.register_buffer("factor", torch.linspace(0.5, 1.5, channels).view(1, -1, 1, 1), persistent=False)

        def forward(self, x):
            return x * self.factor

    backbone = nn.Sequential(OrderedDict(
        stem=nn.Conv2d(in_chans, width, 3, padding=1, bias=False), bn=nn.BatchNorm2d(width), scale=Scale(width),
        act=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten()))
    classifier = nn.Sequential(OrderedDict(fc=nn.Linear(width, num_classes)))
    return mhub.BackboneClassifier(backbone, classifier)


def tinytv_to_ours(state):
    """Upstream layout (conv1, bn1, fc) -> ours (backbone.stem, backbone.bn, classifier.fc)."""
    renames = {"conv1.": "backbone.stem.", "bn1.": "backbone.bn.", "fc.": "classifier.fc."}
    out = {}
    for key, value in state.items():
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def ours_to_tinytv(state):
    inverse = {"backbone.stem.": "conv1.", "backbone.bn.": "bn1.", "classifier.fc.": "fc."}
    return {next((new + k[len(old):] for old, new in inverse.items() if k.startswith(old)), k): v
            for k, v in state.items()}


class TinyPlugin:
    @staticmethod
    @mhub.hookimpl
    def register_models(register):
        register("tinynet", "hub_fixtures:tiny_net", family="tiny", first_conv="backbone.stem",
                 classifier="classifier.fc", defaults={"width": 8})

    @staticmethod
    @mhub.hookimpl
    def register_converters(register):
        register("tests.tinytv", "hub_fixtures:tinytv_to_ours", version=1)


# -- a plugin source scheme ------------------------------------------------------------------------
MEMORY: dict[str, bytes] = {}  # "memory://<key>" -> bytes
FETCH_LOG: list[tuple[str, int]] = []


def memory_fetch(url: str, *, offset: int, staging: Path):
    """A fetcher serving ``MEMORY`` in 1000-byte chunks (the iterable form of the protocol)."""
    from mhub import NetworkError

    FETCH_LOG.append((url, offset))
    key = url[len("memory://"):]
    if key not in MEMORY:
        raise NetworkError(f"{url}: not in memory")
    data = MEMORY[key]
    return (data[i:i + 1000] for i in range(offset, len(data), 1000))


def staged_fetch(url: str, *, offset: int, staging: Path):
    """A fetcher that downloads "with its own client" into ``staging`` (the path form of the protocol)."""
    FETCH_LOG.append((url, offset))
    target = staging / "download" / "file.bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(MEMORY[url[len("staged://"):]])
    return target


class SourcePlugin:
    @staticmethod
    @mhub.hookimpl
    def register_sources(register):
        register("memory", "hub_fixtures:memory_fetch")
        register("staged", "hub_fixtures:staged_fetch")


@pytest.fixture(name="source_plugin")
def source_plugin_fixture():
    MEMORY.clear()
    FETCH_LOG.clear()
    plugins.register_plugin(SourcePlugin, "hub-tests-sources")
    yield
    plugins.unregister_plugin("hub-tests-sources")


def register_tiny() -> None:
    plugins.register_plugin(TinyPlugin, PLUGIN_NAME)


@pytest.fixture(name="tiny_plugin")
def tiny_plugin_fixture():
    register_tiny()
    yield
    plugins.unregister_plugin(PLUGIN_NAME)


@pytest.fixture(name="fast_retries")
def fast_retries_fixture(monkeypatch):
    """Short backoff and timeouts so retry tests take fractions of a second."""
    monkeypatch.setenv("MHUB_BACKOFF", "0.01")
    monkeypatch.setenv("MHUB_MAX_WAIT", "5")
    monkeypatch.setenv("MHUB_RETRIES", "3")


@pytest.fixture(name="server")
def server_fixture():
    from loopback import LoopbackServer

    with LoopbackServer() as running:
        yield running


# -- manifests --------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(tag: str, sources: list[str], data: bytes | None = None, *, model: str = "tinynet", full: bool = True,
          size: bool = True, **fields) -> dict:
    """A ``[[weights]]`` table for ``data`` served at ``sources`` (``full=False``: only an 8-hex prefix)."""
    out = {"model": model, "tag": tag, "sources": sources, "format": "safetensors", "license": "MIT", **fields}
    if data is not None:
        digest = sha256(data)
        out["sha256" if full else "sha256_prefix"] = digest if full else digest[:8]
        if size:
            out["size"] = len(data)
    return out


def write_registry(directory: Path, monkeypatch, *entries: dict) -> Path:
    """Write the entries as a manifest in ``directory`` and point ``MHUB_REGISTRY`` at it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tiny.toml").write_text(dump_manifest(entries), encoding="utf-8")
    monkeypatch.setenv("MHUB_REGISTRY", str(directory))
    from mhub import _registry

    _registry.reset_registry()
    return directory


# -- checkpoints ------------------------------------------------------------------------------------
def tiny_checkpoint(seed: int = 0, num_classes: int = 5, layout: str = "ours"):
    """A trained-looking tiny model (random weights, non-trivial BN stats) and its state dict."""
    import torch

    torch.manual_seed(seed)
    model = tiny_net(num_classes=num_classes)
    with torch.no_grad():
        model.backbone.bn.running_mean.uniform_(-0.5, 0.5)
        model.backbone.bn.running_var.uniform_(0.5, 2.0)
        model.backbone.bn.weight.uniform_(0.5, 1.5)
        model.backbone.bn.bias.uniform_(-0.2, 0.2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return model.eval(), (state if layout == "ours" else ours_to_tinytv(state))


def safetensors_bytes(state, tmp_path: Path) -> bytes:
    from safetensors.torch import save_file

    path = tmp_path / f"st-{os.getpid()}-{len(state)}.safetensors"
    save_file(state, str(path))
    return path.read_bytes()


def pickle_bytes(state, tmp_path: Path) -> bytes:
    import torch

    path = tmp_path / f"pt-{os.getpid()}-{len(state)}.pth"
    torch.save(state, path)
    return path.read_bytes()


# -- subprocesses -----------------------------------------------------------------------------------
def child_env(**extra: str) -> dict[str, str]:
    """The current environment plus the paths a child needs to import this module and loopback."""
    path = os.pathsep.join([str(HERE), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def run_child(*args: str, env: dict[str, str] | None = None, timeout: float = 120, **kwargs):
    """Run ``python -m hub_fixtures ARGS`` (the mhub CLI with the tiny plugin registered)."""
    return subprocess.run([sys.executable, "-m", "hub_fixtures", *args], capture_output=True, text=True,
                          env=env or child_env(), timeout=timeout, **kwargs)


def start_child(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hub_fixtures", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or child_env(), **kwargs)


def main() -> None:
    """``python -m hub_fixtures ARGS``: the ``mhub`` CLI with the tiny plugin registered."""
    register_tiny()
    from mhub.cli import main as cli_main

    cli_main(sys.argv[1:], prog_name="mhub")


if __name__ == "__main__":
    # Run as a script the module is "__main__"; register the importable copy so hookimpl
    # references ("hub_fixtures:tiny_net") resolve to the same module.
    import hub_fixtures

    hub_fixtures.main()
