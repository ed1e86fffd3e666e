"""Hook implementations; imported by ``mhub list``, so no torch here."""

from pathlib import Path

from mhub import hookimpl


@hookimpl
def register_models(register):
    register("tinynet", "mhub_example.model:tinynet", family="tinynet", defaults={"width": 8},
             first_conv="backbone.0", classifier="classifier.2", num_params=9_224,
             paper="An example, not a paper")


@hookimpl
def register_weights(register):
    register(Path(__file__).with_name("weights.toml"))
