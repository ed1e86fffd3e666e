"""Reference models for the ResNet family tests: torchvision or timm builds of the same architecture."""

from __future__ import annotations

import torch

from mhub_resnet import configs


def reference_model(name: str) -> tuple[torch.nn.Module, str]:
    """``(model, converter name)``: torchvision's model where torchvision has it, else timm's."""
    upstream = configs.MODELS[name][2]
    if upstream == "torchvision":
        import torchvision

        return getattr(torchvision.models, name)(), "torchvision.resnet"
    import timm

    return timm.create_model(name, pretrained=False), ("timm.resnet" if upstream == "timm" else "timm.legacy_senet")
