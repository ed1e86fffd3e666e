"""First-party mhub plugin: Inception v3, Inception-v4, Inception-ResNet-v2, Xception and aligned Xception.

Importing the package does not import torch (``mhub list`` loads its plugin module); the constructors below
load :mod:`mhub_inception.model` on first use::

    from mhub_inception import Inceptionv3, Xception
    model = Inceptionv3(pretrained=True, num_classes=10)
    aligned = Xception(65)
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("InceptionResNetv2", "Inceptionv3", "Inceptionv4", "Xception")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_inception' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
