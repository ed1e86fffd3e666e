"""First-party mhub plugin: the Vision Transformer (ViT) family.

Importing the package does not import torch (``mhub list`` loads its plugin module); the names below load
:mod:`mhub_vit.model` on first use::

    from mhub_vit import ViT
    model = ViT("base", patch_size=16, pretrained=True, num_classes=10)
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("EncoderBlock", "ViT", "vit")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_vit' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
