"""Hook implementations of the inception family (torch-free: only names, configs and file paths)."""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs

FAMILY = "inception"


@hookimpl
def register_models(register):
    for name, (function, defaults, paper, upstream, num_params) in configs.ARCHS.items():
        register(name, f"mhub_inception.model:{function}", family=FAMILY, defaults=defaults, paper=paper,
                 num_params=num_params, first_conv=configs.first_conv(name), classifier=configs.CLASSIFIER,
                 aux_classifiers=configs.AUX_CLASSIFIERS.get(name, ()), description=f"{name}, as {upstream}")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, FAMILY)


@hookimpl
def register_converters(register):
    for name, (function, version) in configs.CONVERTERS.items():
        register(name, function, version=version)
