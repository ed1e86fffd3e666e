"""Reference models for the ResNet family tests: torchvision or timm builds of the same architecture."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mhub_resnet import configs

UPSTREAM = Path(__file__).resolve().parents[2] / "data" / "upstream-weights.json"


def upstream_facts() -> list[dict]:
    return json.loads(UPSTREAM.read_text())


def reference_model(name: str) -> tuple[torch.nn.Module, str]:
    """``(model, converter name)``: torchvision's model where torchvision has it, else timm's."""
    upstream = configs.MODELS[name][2]
    if upstream == "torchvision":
        import torchvision

        return getattr(torchvision.models, name)(), "torchvision.resnet"
    import timm

    return timm.create_model(name, pretrained=False), ("timm.resnet" if upstream == "timm" else "timm.legacy_senet")


def randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, so eval mode exercises them
    (upstream inits zero some scales, which would hide a mis-mapped branch)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.2, 0.6, generator=g)
                module.bias.uniform_(-0.2, 0.2, generator=g)
                module.running_mean.uniform_(-0.2, 0.2, generator=g)
                module.running_var.uniform_(0.5, 1.5, generator=g)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
