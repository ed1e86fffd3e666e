"""First-party mhub plugin: UNet on any registered backbone that declares feature points.

Importing the package does not import torch (``mhub list`` loads its plugin module); the constructor below
loads :mod:`mhub_unet.model` on first use::

    from mhub_unet import UNet
    model = UNet(backbone="resnet34.tv_in1k", num_classes=5)   # encoder weights from the hub
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("UNet",)


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_unet' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
