"""Hook implementations of the classic family (torch-free: only names, tables and file paths)."""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs

FAMILY = "classic"


@hookimpl
def register_models(register):
    for name, (_, _, paper, first_conv, num_params) in configs.ARCHS.items():
        register(name, f"mhub_classic.model:{name}", family=FAMILY, paper=paper, num_params=num_params,
                 first_conv=first_conv, classifier=configs.CLASSIFIER,
                 aux_classifiers=configs.AUX_CLASSIFIERS.get(name, ()), description=f"{name} (torchvision layout)")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, FAMILY)


@hookimpl
def register_converters(register):
    for name, function in configs.CONVERTERS.items():
        register(name, function, version=1)
