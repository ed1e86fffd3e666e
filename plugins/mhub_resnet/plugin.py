"""Hook implementations of the resnet family (torch-free: only names, configs and file paths)."""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs


@hookimpl
def register_models(register):
    for name, (_, paper, upstream, num_params) in configs.MODELS.items():
        register(name, f"mhub_resnet.model:{name}", family="resnet", paper=paper, num_params=num_params,
                 first_conv=configs.FIRST_CONV, classifier=configs.CLASSIFIER,
                 description=f"{name} ({upstream} layout)")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, "resnet")


@hookimpl
def register_converters(register):
    for name, function in configs.CONVERTERS.items():
        register(name, function, version=1)
