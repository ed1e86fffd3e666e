"""First-party mhub plugin: AlexNet, VGG, SqueezeNet, DenseNet and GoogLeNet with torchvision's weights.

Importing the package does not import torch (``mhub list`` loads its plugin module); the constructors below
load :mod:`mhub_classic.model` on first use::

    from mhub_classic import VGG
    model = VGG(16, batchnorm=True, pretrained=True, num_classes=10)
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("AlexNet", "DenseNet", "GoogLeNet", "SqueezeNet", "VGG")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_classic' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
