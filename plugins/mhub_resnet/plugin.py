"""Hook implementations of the resnet family (torch-free)."""

from mhub import hookimpl  # noqa: F401
