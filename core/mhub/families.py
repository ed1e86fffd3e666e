"""The two levels a family module adds above its mid-level function (Metalhead 0.8's three levels).

- The registry level: :func:`registry_builder` turns a row of the family's config table into the module-level
  function its registration names (``register("resnet50", "mhub_resnet.model:resnet50", ...)``), for families
  that register a function per architecture rather than one function with ``defaults``.
- The high level: :func:`config_name` maps a constructor's arguments (``ResNet(50)``) to the registered name,
  or raises :class:`mhub.ConfigError` listing the valid ones; ``mhub.create`` then builds it, with
  ``pretrained``, ``num_classes`` and ``in_chans`` handled there::

      def ResNet(depth=None, *, pretrained=False, in_chans=3, num_classes=None, **kwargs):
          name = config_name("ResNet", depth, {d: f"resnet{d}" for d in (18, 34, 50)}, what="a depth")
          return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)

Torch-free: nothing here builds a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._errors import ConfigError

Model = TypeVar("Model")

__all__ = ["ConfigError", "config_name", "registry_builder"]


def registry_builder(name: str, function: Callable[..., Model], config: Mapping[str, Any]) -> Callable[..., Model]:
    """``function`` with ``config`` as its default keyword arguments, under the registered ``name``.

    Assign one per config-table row at module level (``globals()[name] = registry_builder(...)``), so the
    registration's ``"module:name"`` resolves lazily and ``module.name(**overrides)`` builds that row.

    Args:
        name: the registered architecture name; the function's ``__name__``.
        function: the family's mid-level function.
        config: its keyword arguments for this architecture (copied); a call's keyword arguments override them.

    Returns:
        A function of keyword arguments only.
    """
    config = dict(config)

    def build(**kwargs: Any) -> Model:
        return function(**{**config, **kwargs})

    build.__name__ = build.__qualname__ = name
    options = ", ".join(f"{key}={value!r}" for key, value in config.items())
    build.__doc__ = (f"Build ``{name}``: :func:`{function.__module__}.{function.__qualname__}` with "
                     f"``{options}``; keyword arguments override them.")
    return build


def config_name(family: str, choice: Any, names: Mapping[Any, str], *, what: str = "one of",
                error: type[ConfigError] = ConfigError) -> str:
    """The registered name of ``family``'s configuration ``choice``: a high-level constructor's lookup.

    Args:
        family: the constructor, as messages name it (``"ResNet"``).
        choice: the configuration asked for, a value or a tuple of values (``(depth, cardinality, base_width)``);
            ``None``, or a tuple holding ``None``, means none was given: high-level constructors have no default.
        names: configuration -> registered architecture name.
        what: what the message asks for (``"a depth"``, ``"(size, patch_size)"``).
        error: the family's subclass of :class:`mhub.ConfigError` to raise.

    Returns:
        ``names[choice]``.

    Raises:
        ConfigError: (``error``) no configuration was given, or one ``names`` lacks; the message lists the valid ones.
    """
    valid = ", ".join(map(repr, names))
    if choice is None or (isinstance(choice, tuple) and None in choice):
        raise error(f"{family} has no default configuration; give {what}: {valid}")
    try:
        return names[choice]
    except (KeyError, TypeError):  # TypeError: an unhashable choice (a list) is no configuration either
        raise error(f"{family} has no configuration {choice!r}; valid: {valid}") from None
