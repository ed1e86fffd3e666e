"""mhub's first-party weight manifests (TOML, one file per family) and their reference outputs."""

from pathlib import Path

DIRECTORY = Path(__file__).parent


def manifest(family: str) -> Path:
    """Path of the first-party manifest of ``family`` (``registry/<family>.toml``)."""
    return DIRECTORY / f"{family}.toml"
