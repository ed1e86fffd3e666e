"""First-party mhub plugin: MLP-Mixer, ResMLP and gMLP.

Importing the package does not import torch (``mhub list`` loads its plugin module); the names below load
:mod:`mhub_mlp.model` on first use::

    from mhub_mlp import MLPMixer
    model = MLPMixer("base", 16, pretrained=True, num_classes=10)
"""

from importlib import import_module as _import_module

_MODEL_NAMES = ("MLPMixer", "MixerBlock", "ResMLP", "ResMLPBlock", "SpatialGatingBlock", "gMLP", "mlp_mixer")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        return getattr(_import_module(".model", __name__), name)
    raise AttributeError(f"module 'mhub_mlp' has no attribute '{name}'")


__all__ = sorted(_MODEL_NAMES)
