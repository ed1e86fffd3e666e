"""Hook implementations of the MLP-Mixer, ResMLP and gMLP families (torch-free: names, configs and paths)."""

from __future__ import annotations

import mhub_registry
from mhub import hookimpl

from . import configs


@hookimpl
def register_models(register):
    for name, (block, patch_size, num_blocks, embed_dim, _, num_params) in configs.MODELS.items():
        register(name, "mhub_mlp.model:mlp_mixer", family=configs.FAMILIES[block], defaults=configs.defaults(name),
                 paper=configs.PAPERS[block], num_params=num_params, first_conv=configs.FIRST_CONV,
                 classifier=configs.CLASSIFIER,
                 description=f"{num_blocks} {block} blocks of width {embed_dim}, patch {patch_size} (timm name)")


@hookimpl
def register_weights(register):
    mhub_registry.register_manifests(register, "mlp")


@hookimpl
def register_converters(register):
    for family in configs.FAMILIES.values():  # mhub convert finds a map as "<source>.<family>"
        register(f"timm.{family}", configs.CONVERTER, version=1)
