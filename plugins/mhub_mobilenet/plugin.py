"""Hook implementations of the mobilenet family (torch-free)."""

from mhub import hookimpl  # noqa: F401
