"""First-party mhub plugin: ConvNeXt and ConvMixer.

Importing the package does not import torch (``mhub list`` loads its plugin module); the names below load
:mod:`mhub_convnext.model` on first use::

    from mhub_convnext import ConvNeXt
    model = ConvNeXt("tiny", pretrained=True, num_classes=10)
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("ConvMixer", "ConvMixerBlock", "ConvNeXt", "ConvNeXtBlock", "convmixer", "convnext")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_convnext' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
