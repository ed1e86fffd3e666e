"""Shared fixtures: every test gets its own cache and a registry rebuilt from the current environment."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import mhub
from mhub import _registry

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_WEIGHTS = REPO / "data" / "upstream-weights.json"  # upstream facts, see data/README.md


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Every test runs with one torch thread: two pytest workers share two cores, so a second thread per worker
    only adds contention (small tensor ops run ten times slower with it)."""
    import torch

    torch.set_num_threads(1)


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


def serve_locally(tmp_path, monkeypatch, state, *, model: str, converter: str, tag: str = "local_test",
                  default: bool = False, model_args: dict | None = None) -> None:
    """Save ``state`` as a checkpoint and register it as ``model.tag`` through an ``MHUB_REGISTRY`` manifest (a
    file:// source whose sha256 is computed here, independently of mhub)."""
    import hashlib

    import torch

    from mhub._manifest import dump_manifest

    path = tmp_path / f"{model}-{tag}.pth"
    torch.save(state, path)
    entry = {"model": model, "tag": tag, "sources": [path.as_uri()], "format": "torch-pickle",
             "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "converter": converter, "license": "test",
             "default": default, **({"model_args": model_args} if model_args else {})}
    manifests = tmp_path / "manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "local.toml").write_text(dump_manifest([entry]))
    monkeypatch.setenv("MHUB_REGISTRY", str(manifests))
    _registry.reset_registry()


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


def upstream_facts() -> list[dict]:
    """The upstream facts (``data/upstream-weights.json``): one dict per upstream weight set."""
    return json.loads(UPSTREAM_WEIGHTS.read_text())


def published_torchvision_params() -> dict[str, int]:
    """torchvision's published ``num_params`` of each model's default weights (at its default size)."""
    return {f["model"]: f["num_params"] for f in upstream_facts() if f["source"] == "torchvision" and f["is_default"]}


def count(model) -> int:
    """The number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


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


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB tmpfs to fill up (needs root and mount permission; skipped otherwise)."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up for real: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill_up(disk: Path) -> None:
    """Fill ``disk`` with one file until no byte is free (creating empty files still works)."""
    import shutil

    with open(disk / "filler", "wb") as handle:
        handle.write(bytes(shutil.disk_usage(disk).free))

@contextlib.contextmanager
def on_meta():
    """Build on the meta device without running initialisers (no values to initialise there, but slow ones)."""
    import torch

    from mhub.hub.loading import _skip_meta_init

    with torch.device("meta"), _skip_meta_init():
        yield


def randomly_filled(build, seed: int = 0, preset=None):
    """``build()`` (an upstream model, typically) on the meta device, then real tensors: ``preset`` ones (shared,
    not copied) and, for the rest, He-uniform weights, small biases and random BatchNorm statistics; eval mode.

    Much faster than the upstream initialisation of a large model, and every tensor shows in the outputs.
    """
    import math

    import torch

    with on_meta():
        model = build()
    model.to_empty(device="cpu")
    if preset:
        model.load_state_dict(preset, strict=False, assign=True)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if preset and name in preset:
                continue
            if tensor.dim() > 1:
                bound = math.sqrt(6 / tensor[0].numel())
                tensor.uniform_(-bound, bound, generator=generator)
            else:
                tensor.uniform_(-0.1, 0.1, generator=generator)
        for name, buffer in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                buffer.zero_()
    return randomise_batchnorm(model, seed)
