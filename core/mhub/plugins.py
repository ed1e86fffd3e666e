"""The plugin host: one pluggy ``PluginManager("mhub")``, entry points loaded once.

``MHUB_LOAD_PLUGINS`` (comma-separated distribution or entry-point names; empty means none) restricts
which entry points load. A plugin that fails to import is recorded, warned about in one line, and left out.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "mhub"


class PluginWarning(UserWarning):
    """A plugin was skipped in part or whole; the message names it and says why."""


@dataclass
class PluginInfo:
    """What ``mhub plugins`` shows about one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "ok" if not self.problems else "; ".join(self.problems)

    def to_dict(self) -> dict:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "hooks": self.hooks, "status": self.status}


pm = pluggy.PluginManager("mhub")
pm.add_hookspecs(hookspecs)
_infos: dict[str, PluginInfo] = {}
_loaded = False


def warn(message: str) -> None:
    """Emit a one-line plugin warning."""
    warnings.warn(message, PluginWarning, stacklevel=3)


def _allowed() -> set[str] | None:
    value = os.environ.get("MHUB_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Load the ``mhub`` entry points once and return the plugin manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allowed = _allowed()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else ""
        if allowed is not None and dist not in allowed and ep.name not in allowed:
            continue
        if pm.has_plugin(ep.name):
            continue
        info = _infos.setdefault(ep.name, PluginInfo(ep.name, dist, ep.dist.version if ep.dist else ""))
        try:
            module = ep.load()
        except Exception as error:  # a broken plugin must not break mhub
            info.problems.append(f"failed to import: {type(error).__name__}: {error}")
            warn(f"plugin '{ep.name}' ({dist}) skipped: failed to import {ep.value}: {type(error).__name__}: {error}")
            continue
        register_plugin(module, ep.name, distribution=dist, version=info.version)
    return pm


def register_plugin(plugin: object, name: str, *, distribution: str = "", version: str = "") -> None:
    """Register a plugin object (module or class/instance with ``@hookimpl`` methods), e.g. from a test."""
    pm.register(plugin, name=name)
    info = _infos.setdefault(name, PluginInfo(name, distribution, version))
    info.hooks = sorted(impl_name for impl_name in dir(hookspecs) if impl_name.startswith("register_")
                        and callable(getattr(plugin, impl_name, None)))
    _invalidate()


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin` (tests)."""
    if pm.has_plugin(name):
        pm.unregister(name=name)
    _infos.pop(name, None)
    _invalidate()


def record_problem(plugin_name: str, problem: str) -> None:
    """Note a problem against a plugin (shown by ``mhub plugins``) and warn about it in one line."""
    info = _infos.setdefault(plugin_name, PluginInfo(plugin_name))
    if problem not in info.problems:
        info.problems.append(problem)
    warn(f"plugin '{plugin_name}': {problem}")


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen, loaded or not, with its hooks and status."""
    load_plugins()
    from ._registry import get_registry

    get_registry()  # registration problems are recorded while the index is built
    return sorted(_infos.values(), key=lambda info: info.name)


def call_each(hook_name: str, argument: Callable[[str], object]) -> None:
    """Call one hook on every plugin separately, so one plugin raising does not stop the others.

    Args:
        hook_name: a hook of :mod:`mhub.hookspecs`.
        argument: given a plugin name, returns the value for the hook's single argument (usually a
            ``register`` callback that knows which plugin is registering).
    """
    load_plugins()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        (argname,) = impl.argnames
        try:
            impl.function(**{argname: argument(impl.plugin_name)})
        except Exception as error:  # isolate plugin faults
            record_problem(impl.plugin_name, f"{hook_name} raised {type(error).__name__}: {error}")


def _invalidate() -> None:
    from . import _registry

    _registry.reset_registry()
