"""Adds the toolchain commands to the ``mhub`` CLI (torch-free at import)."""

from mhub import hookimpl  # noqa: F401
