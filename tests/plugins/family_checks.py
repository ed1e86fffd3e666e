"""Shared checks of the ViT, ConvNeXt/ConvMixer and MLP-family tests: parity, layouts, manifests."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import torch
from torch import nn

from conftest import REPO, randomise_batchnorm
from parity import assert_outputs_close


def on_meta(build, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return build(*args, **kwargs)


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Noise on every parameter and trained-looking BatchNorm statistics, so that a tensor in the wrong place,
    a norm's weight taken for its bias or a zero-initialised head cannot hide. Returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.add_(torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype), alpha=0.05)
    return randomise_batchnorm(model, seed)


def assert_parity(reference: nn.Module, ours: nn.Module, converter, x: torch.Tensor) -> None:
    """Convert ``reference``'s (randomised) state dict, load it strictly into ``ours`` (built on the meta device
    or not) and compare eval-mode outputs within ``1e-5 * max(1, max |ref|)``."""
    randomise(reference)
    ours.load_state_dict(converter(reference.state_dict()), strict=True, assign=True)
    ours.eval()
    with torch.inference_mode():
        expected, actual = reference(x), ours(x)
    assert float(expected.abs().max()) > 0.1, "outputs near zero would hide mistakes"
    assert_outputs_close(actual, expected)


def assert_same_layout(reference: nn.Module, ours: nn.Module, converter) -> None:
    """Keys and shapes of a converted (meta) state dict equal ours, for models too large to run here."""
    converted = {k: tuple(v.shape) for k, v in converter(reference.state_dict()).items()}
    assert converted == {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def assert_manifest_is_generated(family: str, tmp_path) -> list[dict]:
    """``registry/<family>.toml`` is exactly what scripts/upstream_manifest.py writes; returns its entries."""
    output = tmp_path / f"{family}.toml"
    subprocess.run([sys.executable, str(REPO / "scripts" / "upstream_manifest.py"), family, "-o", str(output)],
                   check=True, capture_output=True)
    committed = REPO / "registry" / f"{family}.toml"
    assert output.read_text() == committed.read_text(), "regenerate with scripts/upstream_manifest.py"
    return tomllib.loads(committed.read_text())["weights"]


def hashed(fact: dict) -> bool:
    """Whether the generator can list an upstream weight set (its file has a known hash)."""
    return fact["source"] == "torchvision" or bool(fact.get("url_hash_fragment")) or bool(
        fact.get("sha256") and fact.get("sha256_revision"))


def assert_plugin_imports_without_torch(package: str) -> None:
    code = (f"import sys, {package}.plugin, {package}.configs, {package}.convert; "
            "heavy = {'torch', 'safetensors', 'requests'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def materialise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a model built on the meta device real, random values: scales (1-D weights, ResMLP's alpha) near 1,
    other tensors small normal noise. For upstream giants cut down to a few blocks."""
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point():
                tensor.zero_()
                continue
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            if name.endswith("running_var"):
                tensor.copy_(1 + 0.1 * noise.abs())
            elif name.endswith("alpha") or (name.endswith("weight") and tensor.dim() == 1):
                tensor.copy_(1 + 0.1 * noise)
            else:
                tensor.copy_(0.02 * noise)
    return model


def assert_listed(registry, facts: list[dict], name_of) -> None:
    """Every upstream weight set with a known hash is registered as ``name_of(fact)``, with its metrics, and
    torchvision's defaults stay the defaults; those without a hash are not."""
    for fact in facts:
        name = name_of(fact)
        assert (name in registry.weights) == hashed(fact), name
        if name not in registry.weights:
            continue
        spec = registry.weights[name]
        if fact["source"] == "torchvision":
            assert spec.sources == (fact["url"],) and spec.expected_digest.startswith(fact["sha256_prefix"])
            assert (spec.metrics["top1"], spec.default) == (fact["acc1"], fact["is_default"])
            assert spec.license == fact.get("weights_license", fact["license"])
        else:
            assert spec.metrics["top1"] == fact["timm_results_imagenet"]["top1"]
