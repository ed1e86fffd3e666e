"""torchvision's initialisation of CNNs (He et al. 2015), shared by the families that follow it."""

from __future__ import annotations

from torch import nn


def he_init(model: nn.Module, *, mode: str = "fan_out", linear_std: float | None = 0.01) -> None:
    """He-normal convolutions (ReLU gain) with zero biases, unit BatchNorms, small normal linear layers.

    Args:
        model: initialised in place.
        mode: ``"fan_out"`` (VGG, MobileNet/EfficientNet) or ``"fan_in"`` (DenseNet).
        linear_std: standard deviation of linear weights; None keeps PyTorch's default. Linear biases are zeroed.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(module.weight, 0, linear_std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
