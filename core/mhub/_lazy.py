"""Resolve ``"module:attribute"`` references, so plugins can name code without importing it."""

import importlib
from collections.abc import Callable
from typing import Any

from ._errors import PluginError


def import_string(reference: str | Callable[..., Any]) -> Any:
    """Return the object a ``"package.module:attr.sub"`` string names; callables pass through.

    Raises:
        PluginError: the reference is malformed or does not resolve.
    """
    if callable(reference):
        return reference
    module_name, sep, attr_path = reference.partition(":")
    if not sep or not module_name or not attr_path:
        raise PluginError(f"'{reference}' is not a 'module:attribute' reference")
    try:
        obj = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as error:
        raise PluginError(f"cannot load '{reference}': {error}") from error
    return obj


def is_reference(value: object) -> bool:
    """True for a callable or a well-formed ``"module:attribute"`` string."""
    if callable(value):
        return True
    if not isinstance(value, str):
        return False
    module_name, sep, attr_path = value.partition(":")
    return bool(sep and module_name and attr_path)
