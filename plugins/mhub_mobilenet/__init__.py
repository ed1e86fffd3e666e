"""First-party mhub plugin: MobileNet v1/v2/v3, MNASNet and EfficientNet v1/v2/Lite from config tables.

Importing the package does not import torch (``mhub list`` loads its plugin module); the constructors below
load :mod:`mhub_mobilenet.model` on first use::

    from mhub_mobilenet import EfficientNet
    model = EfficientNet("b0", pretrained=True, num_classes=10)
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("EfficientNet", "EfficientNetLite", "EfficientNetv2", "MNASNet", "MobileNetv1", "MobileNetv2",
                "MobileNetv3", "irnet", "register_block")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_mobilenet' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
