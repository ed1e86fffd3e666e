"""Hook implementations of the MobileNet / MNASNet / EfficientNet families (torch-free: names, tables, paths).

Every architecture is one row of :data:`mhub_mobilenet.configs.ARCHS` and is built by the same function,
``mhub_mobilenet.model:irnet``, from the registered defaults (config name, width and depth multipliers).
"""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs
from .convert import CONVERTERS

FIRST_CONV = "backbone.stem.conv"
CLASSIFIER = "classifier.fc"
MANIFESTS = ("mobilenet", "efficientnet")


@hookimpl
def register_models(register):
    for name, (family, config, *_rest, num_params) in configs.ARCHS.items():
        register(name, "mhub_mobilenet.model:irnet", family=family, defaults=configs.arch_defaults(name),
                 paper=configs.CONFIGS[config].paper, first_conv=FIRST_CONV, classifier=CLASSIFIER,
                 num_params=num_params, description=f"{name}: '{config}' table")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, *MANIFESTS)


@hookimpl
def register_converters(register):
    for name, function in CONVERTERS.items():
        register(name, function, version=1)
