"""Hook implementations of the ConvNeXt and ConvMixer families (torch-free: only names, configs and paths)."""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs


@hookimpl
def register_models(register):
    for name, (size, num_params, upstream) in configs.CONVNEXT.items():
        register(name, "mhub_convnext.model:convnext", family="convnext", defaults={"size": size},
                 paper=configs.CONVNEXT_PAPER, num_params=num_params, first_conv=configs.FIRST_CONV,
                 classifier=configs.CLASSIFIER, description=f"ConvNeXt-{size} ({upstream} name)")
    for name, row in configs.CONVMIXER.items():
        register(name, "mhub_convnext.model:convmixer", family="convmixer", defaults=configs.convmixer_defaults(name),
                 paper=configs.CONVMIXER_PAPER, num_params=row[-1], first_conv=configs.FIRST_CONV,
                 classifier=configs.CLASSIFIER, description=f"ConvMixer-{row[0]}/{row[1]} (timm name)")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, "convnext")


@hookimpl
def register_converters(register):
    for name, function in configs.CONVERTERS.items():
        register(name, function, version=1)
