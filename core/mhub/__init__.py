"""mhub: a pretrained-weights hub and model registry for PyTorch vision models.

Importing :mod:`mhub` is cheap: it imports neither torch nor the plugins; the names in ``_LAZY`` load
their modules on first use.
"""

from importlib import import_module as _import_module

from ._errors import (
    ConfigError,
    ConversionError,
    FeatureError,
    ImageSizeError,
    IntegrityError,
    ManifestError,
    MhubError,
    NetworkError,
    NoSpaceError,
    NoWeightsError,
    OfflineError,
    PluginError,
    UnknownModelError,
)
from .hookspecs import hookimpl

__version__ = "0.1.0"

# name -> module that defines it; imported lazily (these modules import torch or requests).
_LAZY = {
    "create": "._factory",
    "list_models": "._factory",
    "get_registry": "._registry",
    "BackboneClassifier": "._model",
    "backbone": "._model",
    "classifier": "._model",
    "features": "._features",
    "FeatureNet": "._features",
    "evaluate": ".evaluation",
    "fuse": ".inference",
    "pull": ".hub",
    "layers": ".layers",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = _import_module(_LAZY[name], __name__)
        return module if name == "layers" else getattr(module, name)
    raise AttributeError(f"module 'mhub' has no attribute '{name}'")


__all__ = sorted([
    "BackboneClassifier", "ConfigError", "ConversionError", "FeatureError", "FeatureNet", "ImageSizeError",
    "IntegrityError",
    "ManifestError", "MhubError", "NetworkError", "NoSpaceError", "NoWeightsError", "OfflineError", "PluginError",
    "UnknownModelError", "__version__", "backbone", "classifier", "create", "evaluate", "features", "fuse",
    "get_registry", "hookimpl", "layers", "list_models", "pull",
])
