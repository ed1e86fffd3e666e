"""Hook implementations of the example plugin.

Every ``mhub`` command imports this module, so it must not import torch (``mhub plugins --check example``
verifies that): builders, the converter, the fetcher and the upstream model are named as
``"module:function"`` strings and imported only when they are needed.
"""

from pathlib import Path

from mhub import hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def register_models(register):
    register("tinynet", "mhub_example.model:tinynet", family="tinynet",
             defaults={"widths": [8, 16], "depths": [1, 1], "stem_chs": 8},
             first_conv="backbone.stem.conv", classifier="classifier.fc", num_params=21_936,
             paper="none: an example family for plugin authors",
             description="A two-stage VGG-style network built from mhub.layers and mhub.builders")


@hookimpl
def register_weights(register):
    register(HERE / "tinynet.toml")


@hookimpl
def register_converters(register):
    # "<source>.<family>": `mhub convert --from tinyref` and `--reference tinyref:NAME` find it by this name.
    register("tinyref.tinynet", "mhub_example.convert:from_tinyref", version=1)


@hookimpl
def register_sources(register):
    register("tiny", "mhub_example.source:fetch")  # the scheme, without "://"


@hookimpl
def register_reference_models(register):
    register("tinyref", "mhub_example.upstream:build")


@hookimpl
def register_commands(cli):
    from .commands import prefixes_command  # click only: cheap to import

    cli.add_command(prefixes_command)
