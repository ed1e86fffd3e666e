"""Hook implementations of the ViT family (torch-free: only names, configs and file paths)."""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs


@hookimpl
def register_models(register):
    for name, (size, patch_size, num_params, upstream) in configs.MODELS.items():
        register(name, "mhub_vit.model:vit", family="vit", defaults={"size": size, "patch_size": patch_size},
                 paper=configs.PAPER, num_params=num_params, first_conv=configs.FIRST_CONV,
                 classifier=configs.CLASSIFIER, aliases=configs.aliases_of(name),
                 description=f"ViT-{configs.LETTERS[size].upper()}/{patch_size} ({upstream} name)")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, "vit")


@hookimpl
def register_converters(register):
    for name, function in configs.CONVERTERS.items():
        register(name, function, version=1)
