"""mhub's first-party weight manifests (TOML, one file per family) and their reference outputs."""

from pathlib import Path

DIRECTORY = Path(__file__).parent


def manifest(family: str) -> Path:
    """Path of the first-party manifest of ``family`` (``registry/<family>.toml``)."""
    return DIRECTORY / f"{family}.toml"


def register_manifests(register, *families: str) -> None:
    """Hand the manifests of ``families`` that exist to a ``register_weights`` hook's ``register``."""
    for family in families:
        path = manifest(family)
        if path.exists():
            register(path)
