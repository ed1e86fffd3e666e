"""Reference models for the classic-family tests: torchvision's (and timm's) builds, randomly filled fast.

torchvision's own initialisation of VGG-19 takes seconds (two passes over 143M parameters); building on the
meta device and filling every tensor once with He-uniform values (``conftest.randomly_filled``) takes a
fraction of that and gives outputs of the same scale.
"""

from __future__ import annotations

import functools

import torch
from conftest import on_meta, randomly_filled
from torch import nn

from mhub_classic import configs

ALL = list(configs.ARCHS)
VGGS = [name for name in ALL if name.startswith("vgg")]


@functools.cache
def vgg_head() -> dict[str, torch.Tensor]:
    """One random VGG head for every VGG reference: 124M of each one's 133-144M parameters, filled once."""
    import torchvision

    head = randomly_filled(lambda: torchvision.models.vgg11().classifier, seed=1)
    return {f"classifier.{key}": value for key, value in head.state_dict().items()}


def _narrowed(model: nn.Module, hidden: list[int]) -> nn.Module:
    """AlexNet/VGG with its dense layers ``hidden`` wide: torchvision's layout (same keys), far fewer numbers."""
    linears = [i for i, layer in enumerate(model.classifier) if isinstance(layer, nn.Linear)]
    widths = [model.classifier[linears[0]].in_features, *hidden, model.classifier[linears[-1]].out_features]
    for index, fan_in, fan_out in zip(linears, widths, widths[1:]):
        model.classifier[index] = nn.Linear(fan_in, fan_out)
    return model


def torchvision_model(name: str, seed: int = 0, hidden: list[int] | None = None, **kwargs) -> nn.Module:
    """torchvision's ``name`` with random weights, in eval mode (GoogLeNet without auxiliary heads by default).

    ``hidden`` narrows AlexNet's or VGG's dense layers; otherwise every VGG shares one head.
    """
    import torchvision

    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": False, **kwargs}
    if hidden is not None:
        return randomly_filled(lambda: _narrowed(getattr(torchvision.models, name)(**kwargs), hidden), seed)
    preset = vgg_head() if name.startswith("vgg") else None
    return randomly_filled(lambda: getattr(torchvision.models, name)(**kwargs), seed, preset)


def timm_model(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """timm's ``name`` with random weights, in eval mode (VGGs share the head of :func:`torchvision_model`'s)."""
    import timm

    preset = None
    if name.startswith("vgg"):  # timm's first two dense layers are convolutions: the same numbers, reshaped
        head = vgg_head()
        preset = {"pre_logits.fc1.weight": head["classifier.0.weight"].view(4096, 512, 7, 7),
                  "pre_logits.fc1.bias": head["classifier.0.bias"],
                  "pre_logits.fc2.weight": head["classifier.3.weight"].view(4096, 4096, 1, 1),
                  "pre_logits.fc2.bias": head["classifier.3.bias"],
                  "head.fc.weight": head["classifier.6.weight"], "head.fc.bias": head["classifier.6.bias"]}
    return randomly_filled(lambda: timm.create_model(name, pretrained=False, **kwargs), seed, preset)


def ours_loaded(name: str, state: dict, **kwargs) -> nn.Module:
    """Our ``name`` built on the meta device and given ``state`` strictly (tensors shared, not copied); eval."""
    import mhub

    with on_meta():
        model = mhub.create(name, **kwargs)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
