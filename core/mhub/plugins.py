"""The plugin host: one pluggy ``PluginManager("mhub")``, entry points loaded once, each plugin isolated.

Whatever goes wrong inside one plugin (an import that raises or calls ``sys.exit()``, a hook whose
signature does not match its spec, a hook that raises) skips that plugin, with one warning line naming it
and the reason; the rest of mhub keeps working, and nothing the skipped plugin registered stays behind.
Problems that do not stop a plugin (an unknown or unmarked hook, one invalid registration) are recorded and
warned about too; ``mhub plugins`` shows both.

``MHUB_LOAD_PLUGINS`` restricts which entry points load: comma-separated distribution or entry-point names,
compared after PEP 503 normalisation (``mhub_tinynets`` = ``mhub-tinynets``); ``-NAME`` excludes one; a value
of exclusions only loads everything else; an empty value loads nothing. The first-party plugins are the
entry points of the ``mhub`` distribution: one per family (``resnet``, ``mobilenet``, ...) and ``tools``.

Warnings are ``PluginWarning`` instances located at the plugin's own source line where one is known, so
``warnings.filterwarnings(..., module="mhub_foo")`` silences one plugin.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import FrameType
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "mhub"
ENV_VAR = "MHUB_LOAD_PLUGINS"
HOOKS = tuple(sorted(name for name, obj in vars(hookspecs).items()
                     if inspect.isfunction(obj) and hasattr(obj, "mhub_spec")))
_MHUB_DIR = str(Path(__file__).resolve().parent) + os.sep
_PLUGGY_DIR = str(Path(pluggy.__file__).resolve().parent) + os.sep


class PluginWarning(UserWarning):
    """A plugin was skipped in part or whole; the message names it and says why."""


@dataclass
class PluginInfo:
    """What ``mhub plugins`` shows about one plugin.

    Attributes:
        name: entry-point name (or the name given to :func:`register_plugin`).
        distribution: the installed distribution declaring it (empty for in-process plugins).
        version: that distribution's version.
        module: the entry point's ``module[:attr]`` value.
        hooks: hooks pluggy registered for it (validated against their specs), sorted.
        commands: CLI commands it added.
        problems: what went wrong without stopping it (unknown hooks, invalid registrations, ...).
        skipped: why it was left out entirely, or None when it is loaded.
        disabled: ``MHUB_LOAD_PLUGINS`` excluded it (not an error).
    """

    name: str
    distribution: str = ""
    version: str = ""
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None
    disabled: bool = False

    @property
    def loaded(self) -> bool:
        return self.skipped is None and not self.disabled

    @property
    def status(self) -> str:
        if self.disabled:
            return f"disabled by {ENV_VAR}"
        if self.skipped is not None:
            return f"skipped: {self.skipped}"
        return "ok" if not self.problems else "; ".join(self.problems)

    def to_dict(self) -> dict:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "module": self.module, "hooks": self.hooks, "commands": self.commands, "loaded": self.loaded,
                "problems": self.problems, "status": self.status}


pm = pluggy.PluginManager("mhub")
pm.add_hookspecs(hookspecs)
_infos: dict[str, PluginInfo] = {}
_state = "new"  # "new" -> "loading" -> "loaded"; back to "new" if loading was interrupted
_pending: list[tuple[str, str, Any]] | None = None  # (plugin, problem, location) of the build pass under way


# -- names and the MHUB_LOAD_PLUGINS selection ---------------------------------------------------------
def canonical_name(name: str) -> str:
    """A distribution or entry-point name normalised as PEP 503 does (``Mhub_Tiny.nets`` -> ``mhub-tiny-nets``)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@dataclass(frozen=True)
class Selection:
    """``MHUB_LOAD_PLUGINS`` parsed: names to load (None: all) and names to leave out, both canonical."""

    include: frozenset[str] | None
    exclude: frozenset[str]

    @classmethod
    def from_env(cls) -> Selection | None:
        value = os.environ.get(ENV_VAR)
        if value is None:
            return None
        names = [n.strip() for n in value.split(",") if n.strip()]
        include = {canonical_name(n) for n in names if not n.startswith("-")}
        exclude = {canonical_name(n[1:]) for n in names if n.startswith("-") and n[1:].strip()}
        # Exclusions alone mean "everything but these"; an empty value means nothing at all.
        return cls(frozenset(include) if include or not names else None, frozenset(exclude))

    def matches(self, names: set[str], distribution: str, entry_point: str) -> bool:
        return canonical_name(distribution) in names or canonical_name(entry_point) in names

    def admits(self, distribution: str, entry_point: str) -> bool:
        if self.matches(self.exclude, distribution, entry_point):
            return False
        return self.include is None or self.matches(self.include, distribution, entry_point)


def _check_selection(selection: Selection, entries: list[tuple[EntryPoint, str, str]]) -> None:
    """Warn about ``MHUB_LOAD_PLUGINS`` names that match no installed plugin."""
    known = {canonical_name(n) for ep, dist, _ in entries for n in (ep.name, dist) if n}
    unknown = sorted(n for n in (selection.include or set()) | selection.exclude if n not in known)
    if unknown:
        installed = ", ".join(sorted({f"{dist or '?'}:{ep.name}" for ep, dist, _ in entries})) or "none"
        warn(f"{ENV_VAR}: {', '.join(repr(n) for n in unknown)} "
             f"match{'es' if len(unknown) == 1 else ''} no installed plugin (installed distribution:entry point: "
             f"{installed})")


def _dist(ep: EntryPoint) -> tuple[str, str]:
    """The name and version of the distribution declaring ``ep``; ("", "") when unknown.

    Each ``Distribution.metadata`` access reads and parses METADATA again: read it once.
    """
    if ep.dist is None:
        return "", ""
    metadata = ep.dist.metadata
    return metadata["Name"] or "", metadata["Version"] or ""


# -- loading -------------------------------------------------------------------------------------------
def load_plugins() -> pluggy.PluginManager:
    """Load the ``mhub`` entry points once and return the plugin manager.

    Safe to call from inside a plugin's import (it returns the manager as loaded so far). When loading is
    interrupted (Ctrl-C), the next call carries on with the plugins not yet registered.
    """
    global _state
    if _state != "new":
        return pm
    _state = "loading"
    try:
        # mhub's own plugins first, each entry point's distribution read once
        entries = sorted(((ep, *_dist(ep)) for ep in entry_points(group=ENTRY_POINT_GROUP)),
                         key=lambda entry: (entry[1] != "mhub", entry[0].name))
        selection = Selection.from_env()
        if selection is not None:
            _check_selection(selection, entries)
        for ep, distribution, version in entries:
            if selection is not None and not selection.admits(distribution, ep.name):
                _infos.setdefault(ep.name, PluginInfo(ep.name, distribution, version, ep.value, disabled=True))
                continue
            _load_entry_point(ep, distribution, version)
    except BaseException:
        _state = "new"
        raise
    _state = "loaded"
    return pm


def _load_entry_point(ep: EntryPoint, distribution: str, version: str) -> None:
    existing = _infos.get(ep.name)
    if existing is not None and existing.distribution == distribution and not existing.disabled:
        return  # already loaded (or skipped) in an earlier, interrupted pass
    if existing is not None and not existing.disabled:
        warn(f"plugin '{ep.name}' ({distribution}) skipped: the name is already used by the plugin of "
             f"{existing.distribution or 'this process'}")
        return
    _infos[ep.name] = PluginInfo(ep.name, distribution, version, ep.value)
    try:
        module = ep.load()
    except KeyboardInterrupt:
        del _infos[ep.name]  # not seen: the next load_plugins() tries it again
        raise
    except BaseException as error:  # SystemExit from a module-level argparse too: a plugin never stops mhub
        skip_plugin(ep.name, f"failed to import {ep.value}: {describe(error)}",
                    location=_import_location(error, ep.module))
        return
    if module is None:
        skip_plugin(ep.name, f"{ep.value} is None")
        return
    register_plugin(module, ep.name, distribution=distribution, version=version)


def register_plugin(plugin: object, name: str, *, distribution: str = "", version: str = "") -> bool:
    """Register a plugin object (module, or class/instance with ``@hookimpl`` functions), e.g. from a test.

    A plugin whose hooks pluggy rejects is not registered at all: it is skipped with a warning.

    Returns:
        Whether the plugin was registered.

    Raises:
        PluginError: a plugin of that name is registered already.
    """
    if pm.get_plugin(name) is not None:
        from ._errors import PluginError

        raise PluginError(f"a plugin called '{name}' is registered already")
    info = _infos.get(name)
    if info is None or info.distribution != distribution:
        info = _infos[name] = PluginInfo(name, distribution, version)
    info.skipped, info.disabled, info.problems, info.hooks = None, False, [], []
    _locations[name] = _plugin_location(plugin)
    problem, location = _signature_problem(plugin)
    if problem is None:
        try:
            pm.register(plugin, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            # Older pluggy releases register hooks one by one and may stop half-way: undo all of it.
            if pm.get_plugin(name) is plugin:
                pm.unregister(name=name)
            problem = describe(error)
    if problem is not None:
        skip_plugin(name, problem, location=location)
        return False
    info.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.has_spec())
    for hook_problem in _hook_problems(plugin):
        record_problem(name, hook_problem)
    _invalidate()
    return True


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin` (tests)."""
    if pm.has_plugin(name):
        pm.unregister(name=name)
    _infos.pop(name, None)
    _locations.pop(name, None)
    _invalidate()


def skip_plugin(name: str, reason: str, *, location: tuple[str, int, str] | None = None) -> None:
    """Leave a plugin out entirely: unregister it, record why, and warn in one line."""
    info = _infos.setdefault(name, PluginInfo(name))
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(name=name)
    info.skipped, info.hooks, info.commands = reason, [], []  # its CLI commands go too (mhub.cli drops them)
    who = f" ({info.distribution})" if info.distribution else ""
    warn(f"plugin '{name}'{who} skipped: {reason}", plugin=name, location=location)
    _invalidate()


def record_problem(plugin_name: str, problem: str) -> None:
    """Note a problem against a plugin (shown by ``mhub plugins``) and warn about it in one line.

    While the registry is being built, problems wait until the build pass is final (a pass in which a plugin
    was skipped is redone without it, and its problems are forgotten).
    """
    location = _frame_location(plugin_name)  # while the plugin's register(...) call is on the stack
    if _pending is not None:
        _pending.append((plugin_name, problem, location))
        return
    _record(plugin_name, problem, location)


def _record(plugin_name: str, problem: str, location: tuple[str, int, str] | None) -> None:
    info = _infos.setdefault(plugin_name, PluginInfo(plugin_name))
    if problem not in info.problems:
        info.problems.append(problem)
        warn(f"plugin '{plugin_name}': {problem}", plugin=plugin_name, location=location)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen (loaded, skipped or disabled), with its hooks and status."""
    load_plugins()
    from ._registry import get_registry

    get_registry()  # registration problems are recorded while the index is built
    return sorted(_infos.values(), key=lambda info: info.name)


def plugin_info(name: str) -> PluginInfo | None:
    """The plugin called ``name`` (entry-point name, compared after normalisation), if any."""
    if name in _infos:
        return _infos[name]
    wanted = canonical_name(name)
    return next((info for key, info in _infos.items() if canonical_name(key) == wanted), None)


# -- calling hooks -------------------------------------------------------------------------------------
def call_each(hook_name: str, argument: Callable[[str], object],
              commit: Callable[[str, object], None] | None = None) -> None:
    """Call one hook on every plugin separately; a plugin whose hook raises is skipped.

    Args:
        hook_name: a hook of :mod:`mhub.hookspecs`.
        argument: given a plugin name, returns the value for the hook's single argument (usually a
            ``register`` callback that knows which plugin is registering).
        commit: called as ``commit(plugin_name, value)`` after the plugin's hook returned normally, to apply
            what it staged in ``value``.
    """
    load_plugins()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        value = argument(impl.plugin_name)
        try:
            impl.function(*(value for _ in impl.argnames))
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # isolate plugin faults, SystemExit included
            skip_plugin(impl.plugin_name, f"{hook_name} raised {describe(error)}",
                        location=_raise_location(error, impl.function))
            continue
        if commit is not None:
            commit(impl.plugin_name, value)


def build_registry(build: Callable[[], Any]) -> Any:
    """Run ``build`` (which calls the registration hooks) until a pass skips no plugin, and return its result.

    A plugin whose hook raises is skipped in the middle of a pass, after its earlier hooks may have
    registered things: the pass is then redone without it, so nothing of a skipped plugin stays behind.
    Registration problems are reported for the final pass only.
    """
    global _pending
    outer = _pending
    try:
        while True:
            _pending = []
            before = {name for name, info in _infos.items() if info.skipped}
            result = build()
            if {name for name, info in _infos.items() if info.skipped} <= before:
                break
        problems = _pending
    finally:
        _pending = outer
    for plugin_name, problem, location in problems:
        _record(plugin_name, problem, location)
    return result


# -- checking a plugin's hooks -------------------------------------------------------------------------
def _hook_functions(plugin: object) -> Iterator[tuple[str, str, Callable, dict]]:
    """``(attribute, hook name, function, options)`` for every ``@hookimpl``-marked attribute of a plugin."""
    for attr in dir(plugin):
        try:
            opts = pm.parse_hookimpl_opts(plugin, attr)
        except Exception:  # noqa: BLE001 - a property that raises is not a hook
            continue
        if opts is not None:
            yield attr, opts.get("specname") or attr, getattr(plugin, attr), dict(opts)


def _signature_problem(plugin: object) -> tuple[str | None, tuple[str, int, str] | None]:
    """Why pluggy would reject the plugin's hooks (an argument the spec does not have) and where, or Nones."""
    for attr, hook_name, function, _ in _hook_functions(plugin):
        caller = getattr(pm.hook, hook_name, None)
        if caller is None or not caller.has_spec():
            continue
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            continue
        required = [p.name for p in parameters if p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        expected = caller.spec.argnames
        unknown = [n for n in required if n not in expected]
        if unknown:
            return (f"hook {attr}({', '.join(required)}) does not match the spec {hook_name}({', '.join(expected)}): "
                    f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
                    _raise_location(None, function))
    return None, None


def _hook_problems(plugin: object) -> list[str]:
    """Hooks that will never be called: unknown (misspelt) hook names and functions missing ``@hookimpl``."""
    problems, marked = [], set()
    for attr, hook_name, _, opts in _hook_functions(plugin):
        marked.add(attr)
        caller = getattr(pm.hook, hook_name, None)
        if (caller is None or not caller.has_spec()) and not opts.get("optionalhook"):
            problems.append(f"unknown hook '{hook_name}'{_did_you_mean(hook_name)}; it is never called")
    module = plugin if inspect.ismodule(plugin) else None
    for attr in dir(plugin):
        if attr in marked or not attr.startswith("register"):
            continue
        value = getattr(plugin, attr, None)
        if not inspect.isroutine(value) or (module is not None and getattr(value, "__module__", "") != module.__name__):
            continue  # imported helpers are not meant as hooks
        if attr in HOOKS:
            problems.append(f"{attr} is not marked with @mhub.hookimpl; it is never called")
        elif suggestion := _did_you_mean(attr):
            problems.append(f"{attr} is not a hook{suggestion}; it is never called")
    return problems


def _did_you_mean(name: str) -> str:
    import difflib  # here, on an error path, not at the top: mhub list starts faster without it

    close = difflib.get_close_matches(name, HOOKS, n=1, cutoff=0.85)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(error: BaseException) -> str:
    """One line for an exception: ``Type: first line of the message`` (``sys.exit(2)`` for SystemExit)."""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r})"
    text = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- warnings that point at the plugin -----------------------------------------------------------------
_locations: dict[str, tuple[str, int, str]] = {}  # plugin name -> (file, line, module) of its definition


def warn(message: str, *, plugin: str | None = None, location: tuple[str, int, str] | None = None) -> None:
    """Emit a one-line :class:`PluginWarning`.

    It is located (file, line, module) at the plugin's own code where possible: ``location`` when given,
    else the innermost frame of the plugin on the current stack (the ``register(...)`` call that was
    refused), else where the plugin is defined; otherwise at the caller of mhub.
    """
    where = location or (_frame_location(plugin) if plugin else None) or _locations.get(plugin or "")
    if where is not None:
        filename, lineno, module = where
        warnings.warn_explicit(message, PluginWarning, filename, lineno, module=module)
    else:
        warnings.warn(message, PluginWarning, stacklevel=_caller_stacklevel())


def _plugin_location(plugin: object) -> tuple[str, int, str] | None:
    target = plugin if inspect.ismodule(plugin) or inspect.isclass(plugin) else type(plugin)
    try:
        filename = inspect.getsourcefile(target) or inspect.getfile(target)
    except (TypeError, OSError):
        return None
    try:
        line = 1 if inspect.ismodule(target) else inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        line = 1
    module = target.__name__ if inspect.ismodule(target) else target.__module__
    return filename, line, module


def _frame_location(plugin: str) -> tuple[str, int, str] | None:
    module = (_locations.get(plugin) or ("", 0, ""))[2]
    if not module:
        return None
    root = module.split(".")[0]
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == module or name == root or name.startswith(root + "."):
            return frame.f_code.co_filename, frame.f_lineno, name
        frame = frame.f_back
    return None


def _raise_location(error: BaseException | None, function: Callable) -> tuple[str, int, str] | None:
    """Where a hook raised: its innermost frame in the hook's own file, else the hook's definition."""
    code = getattr(inspect.unwrap(function), "__code__", None)
    if code is None:
        return None
    line = code.co_firstlineno
    if error is not None:
        import traceback  # here, on an error path, not at the top: mhub list starts faster without it

        for frame, lineno in traceback.walk_tb(error.__traceback__):
            if frame.f_code.co_filename == code.co_filename:
                line = lineno
    return code.co_filename, line, getattr(function, "__module__", "") or ""


def _import_location(error: BaseException, module: str) -> tuple[str, int, str] | None:
    """The line of the entry-point module (or its package) at which its import failed."""
    import traceback  # on an error path only, as in _raise_location

    root = module.split(".")[0]
    found = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        name = frame.f_globals.get("__name__", "")
        if name == root or name.startswith(root + "."):
            found = (frame.f_code.co_filename, lineno, name)
            if name == module:
                break
    return found


def _caller_stacklevel() -> int:
    """``stacklevel`` for :func:`warnings.warn` that names the first frame outside mhub and pluggy."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith((_MHUB_DIR, _PLUGGY_DIR)):
        level, frame = level + 1, frame.f_back
    return level


def _invalidate() -> None:
    from . import _registry

    _registry.reset_registry()
