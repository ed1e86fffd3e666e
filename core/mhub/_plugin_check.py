"""``mhub plugins --check NAME``: a plugin author's self-test, one line per check.

Checks that the entry-point module imports without torch (in a subprocess that stops at the first torch
import and names the line that made it), that pluggy accepted every hook and none is misspelt or unmarked,
that every registration and manifest entry was valid, that every builder, converter, source fetcher and
reference implementation the plugin names can be imported, and that every weight set's reference outputs
are present and fit the entry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from . import plugins
from ._errors import MhubError
from ._lazy import import_string

OK, NOTE, FAIL = "ok", "note", "FAIL"
IMPORT_TIMEOUT = 60  # seconds; every mhub command imports the module, so it must be quick

# Imports one module with a guard that refuses torch; prints what happened as JSON.
_TORCH_GUARD = r"""
import importlib, json, sys, traceback

found = []

class TorchGuard:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            if not found:
                frames = [f for f in traceback.extract_stack()[:-1] if not f.filename.startswith("<")]
                found.extend(f"{f.filename}:{f.lineno}" for f in frames)
            raise ImportError("torch is not allowed while importing a plugin's entry point")
        return None

sys.meta_path.insert(0, TorchGuard())
error = None
try:
    importlib.import_module(sys.argv[1])
except BaseException as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps({"torch": found, "error": error}))
"""


@dataclass
class Check:
    """One line of the report."""

    level: str  # OK, NOTE or FAIL
    what: str
    detail: str

    def line(self) -> str:
        return f"  {self.level:<4}  {self.what}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "check": self.what, "detail": self.detail}


def check_plugin(name: str) -> list[tuple[plugins.PluginInfo | None, list[Check]]]:
    """Run every check on the plugin(s) ``name`` selects: an entry-point or distribution name.

    Returns:
        One ``(plugin, checks)`` pair per entry point; ``(None, [failure])`` when nothing matches.
    """
    infos = plugins.plugin_infos()
    wanted = plugins.canonical_name(name)
    selected = [info for info in infos if wanted in (plugins.canonical_name(info.name),
                                                       plugins.canonical_name(info.distribution or "-"))]
    if not selected:
        known = ", ".join(f"{i.name} ({i.distribution or 'in-process'})" for i in infos) or "none"
        return [(None, [Check(FAIL, "plugin", f"no plugin called '{name}' is installed (installed: {known})")])]
    return [(info, _checks(info)) for info in selected]


def _checks(info: plugins.PluginInfo) -> list[Check]:
    from ._registry import get_registry

    where = f"{info.module or '?'} ({info.distribution or 'in-process'} {info.version})".rstrip()
    checks = [Check(OK, "entry point", where)]
    if info.disabled:
        return checks + [Check(FAIL, "loaded", f"no: disabled by {plugins.ENV_VAR}; unset it to check this plugin")]
    if info.module:
        checks.append(_torch_free(info.module.partition(":")[0]))
    if info.skipped is not None:
        return checks + [Check(FAIL, "loaded", f"no: skipped: {info.skipped}")]
    checks.append(Check(OK, "hooks", ", ".join(info.hooks) or "none"))
    checks += [Check(FAIL, "problem", problem) for problem in info.problems]
    if info.commands:
        checks.append(Check(OK, "commands", ", ".join(f"mhub {c}" for c in info.commands)))

    registry = get_registry()
    for arch in (a for a in registry.archs.values() if a.plugin == info.name):
        checks.append(_importable(f"model {arch.name}", arch.builder))
    for converter in (c for c in registry.converters.values() if c.plugin == info.name):
        checks.append(_importable(f"converter {converter.name}", converter.function))
    for scheme, (fetcher, owner) in registry.sources.items():
        if owner == info.name:
            checks.append(_importable(f"source {scheme}://", fetcher))
    for library, (builder, owner) in registry.reference_models.items():
        if owner == info.name:
            checks.append(_importable(f"reference {library}:", builder))
    specs = [w for w in registry.weights.values() if w.plugin == info.name]
    checks += [_reference(spec) for spec in specs if spec.reference_path is not None]
    unchecked = [spec.name for spec in specs if spec.reference_path is None]
    if unchecked:
        listed = ", ".join(unchecked[:3]) + (f" and {len(unchecked) - 3} more" if len(unchecked) > 3 else "")
        checks.append(Check(NOTE, "reference outputs", f"none for {listed}: 'mhub validate' needs --reference "
                                                       "for these weights"))
    return checks


def _torch_free(module: str) -> Check:
    """Import ``module`` in a fresh interpreter that refuses torch."""
    try:
        result = subprocess.run([sys.executable, "-c", _TORCH_GUARD, module], capture_output=True, text=True,
                                timeout=IMPORT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return Check(FAIL, "torch-free import", f"importing {module} took more than {IMPORT_TIMEOUT} s")
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return Check(FAIL, "torch-free import", f"could not run the check: {result.stderr.strip()[-300:]}")
    if report["torch"]:
        chain = report["torch"]
        via = f" (innermost: {chain[-1]})" if len(chain) > 1 else ""
        first = next((f for f in chain if "importlib" not in f), chain[0])
        return Check(FAIL, "torch-free import", f"importing {module} imports torch at {first}{via}; "
                                                "name builders and converters as 'module:function' strings")
    if report["error"]:
        return Check(FAIL, "torch-free import", f"importing {module} fails: {report['error']}")
    return Check(OK, "torch-free import", module)


def _importable(what: str, reference: Any) -> Check:
    name = reference if isinstance(reference, str) else getattr(reference, "__qualname__", repr(reference))
    try:
        target = import_string(reference)
    except MhubError as error:
        return Check(FAIL, what, str(error))
    except Exception as error:  # noqa: BLE001 - the module itself may raise anything while importing
        return Check(FAIL, what, f"cannot load '{name}': {plugins.describe(error)}")
    if not callable(target):
        return Check(FAIL, what, f"'{name}' is not callable")
    return Check(OK, what, name)


def _reference(spec) -> Check:
    what = f"weights {spec.name}"
    try:
        from mhub_tools.reference import load_reference
    except ImportError:
        exists = spec.reference_path.is_file()
        return Check(OK if exists else FAIL, what, f"reference {spec.reference_path}"
                     + ("" if exists else " does not exist"))
    if not spec.reference_path.is_file():
        return Check(FAIL, what, f"reference file {spec.reference_path} does not exist (is it package data?)")
    try:
        logits = load_reference(spec.reference_path).logits
    except MhubError as error:
        return Check(FAIL, what, str(error))
    if spec.num_classes and logits.shape[1] != spec.num_classes:
        return Check(FAIL, what, f"reference {spec.reference_path} has {logits.shape[1]} classes, the entry "
                                 f"{spec.num_classes}")
    return Check(OK, what, f"reference {spec.reference_path}")
