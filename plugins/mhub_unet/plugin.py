"""Hook implementations of the UNet family (torch-free: only names and tables)."""

from __future__ import annotations

from mhub import hookimpl

from . import configs

FAMILY = "unet"


@hookimpl
def register_models(register):
    for name, (backbone, smp_name, _, _) in configs.UNETS.items():
        # one output map by default, as smp's Unet (binary segmentation)
        register(name, f"mhub_unet.model:{name}", family=FAMILY, paper=configs.PAPER, defaults={"num_classes": 1},
                 first_conv=configs.first_conv(name), classifier=configs.CLASSIFIER,
                 description=f"UNet on {backbone} (smp's Unet with encoder '{smp_name}')")


@hookimpl
def register_converters(register):
    for name, function in configs.CONVERTERS.items():
        register(name, function, version=1)
