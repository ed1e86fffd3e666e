"""mhub's first-party weight manifests (TOML, one file per family) and their reference outputs."""

from pathlib import Path

DIRECTORY = Path(__file__).parent


def manifest(family: str) -> Path:
    """Path of the first-party manifest of ``family`` (``registry/<family>.toml``)."""
    return DIRECTORY / f"{family}.toml"


def register_manifests(register, *families: str) -> None:
    """Hand the manifests of ``families`` to a ``register_weights`` hook's ``register``.

    Every family named has a manifest, so none is skipped quietly: a missing file (a broken installation)
    is an error of the plugin, which mhub reports with the path in one warning line and ``mhub plugins``.
    """
    for family in families:
        register(manifest(family))
