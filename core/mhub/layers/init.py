"""Weight initialisations shared by the families that follow them.

- :func:`he_init`: torchvision's initialisation of CNNs (He et al. 2015);
- :func:`trunc_normal_init`: the truncated-normal scheme of ViT and ConvNeXt (timm, torchvision).
"""

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


def trunc_normal_init(model: nn.Module, std: float, *,
                      types: type[nn.Module] | tuple[type[nn.Module], ...] = nn.Linear, a: float = -2.0,
                      b: float = 2.0, zero_bias: bool = True) -> None:
    """Truncated-normal weights (mean 0) for every module of the given types, their biases zeroed.

    timm's ViT initialises its linear layers so (std 0.02), ConvNeXt its convolutions and linear layers (std 0.02,
    official code, torchvision and timm). Modules are drawn in ``model.modules()`` order.

    Args:
        model: initialised in place.
        std: standard deviation of the normal before truncation.
        types: the module class(es) to initialise, as ``isinstance`` takes them; each has a ``weight``.
        a, b: truncation bounds, absolute values as :func:`torch.nn.init.trunc_normal_` takes them (not multiples
            of ``std``).
        zero_bias: zero the biases of those modules (where they have one); False keeps them as they are.
    """
    for module in model.modules():
        if isinstance(module, types):
            nn.init.trunc_normal_(module.weight, std=std, a=a, b=b)
            if zero_bias and module.bias is not None:
                nn.init.zeros_(module.bias)
