"""Reference models for the ResNet family tests: torchvision or timm builds of the same architecture."""

from __future__ import annotations

import torch
from conftest import randomly_filled

from mhub_resnet import configs


def reference_model(name: str) -> tuple[torch.nn.Module, str]:
    """``(model, converter name)``: torchvision's model where torchvision has it, else timm's, with random
    tensors filled in once (:func:`conftest.randomly_filled`: He-uniform weights, random BatchNorm statistics)
    rather than by the upstream initialisers, which cost more than the comparison itself."""
    upstream = configs.MODELS[name][2]
    if upstream == "torchvision":
        import torchvision

        return randomly_filled(getattr(torchvision.models, name)), "torchvision.resnet"
    import timm

    return (randomly_filled(lambda: timm.create_model(name, pretrained=False)),
            "timm.resnet" if upstream == "timm" else "timm.legacy_senet")
