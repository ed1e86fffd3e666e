"""Shared fixtures: every test gets its own cache and a registry rebuilt from the current environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import mhub
from mhub import _registry

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_WEIGHTS = REPO / "data" / "upstream-weights.json"  # upstream facts, see data/README.md


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh ``MHUB_HOME`` per test; no registry directories or offline flags leak in."""
    home = tmp_path_factory.mktemp("mhub_home")
    monkeypatch.setenv("MHUB_HOME", str(home))
    for var in ("MHUB_REGISTRY", "MHUB_OFFLINE", "HF_HUB_OFFLINE", "MHUB_ENDPOINT", "MHUB_LOAD_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    _registry.reset_registry()
    yield home
    _registry.reset_registry()


@pytest.fixture
def registry():
    """The registry index as the installed plugins build it."""
    return mhub.get_registry()


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 300):
    """Run ``python -m mhub ARGS`` in a subprocess and return the CompletedProcess."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "mhub", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"mhub {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def randomise_batchnorm(model, seed: int = 0):
    """Give every BatchNorm trained-looking statistics and affine parameters, so eval-mode outputs depend on
    every buffer (fresh upstream models have mean 0 / var 1, and some zero their last scales, which would
    hide a mis-mapped tensor). Returns the model, in eval mode."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                if module.affine:
                    module.weight.uniform_(0.5, 1.5, generator=generator)
                    module.bias.uniform_(-0.2, 0.2, generator=generator)
    return model.eval()


def randomised_model(factory, *args, seed: int = 0, **kwargs):
    """``factory(*args, **kwargs)`` (an upstream model) built without its own initialisation, then given random
    values: BatchNorm as :func:`randomise_batchnorm`, convolution and linear weights normal with std
    ``fan_in ** -0.5`` (activations keep an O(1) scale through deep networks, where upstream initialisations
    with randomised statistics reach 1e13) and biases uniform in [-0.1, 0.1]. Returns it in eval mode."""
    import torch
    from torch import nn

    with torch.device("meta"):
        model = factory(*args, **kwargs)
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.zero_()  # num_batches_tracked, and anything the loops below do not fill
        for layer in model.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer.weight.normal_(0, layer.weight[0].numel() ** -0.5, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-0.1, 0.1, generator=generator)
    return randomise_batchnorm(model, seed)
