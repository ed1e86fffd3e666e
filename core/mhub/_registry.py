"""The registry index: architectures, weight sets, converters and sources from every plugin.

Built once from the plugins' registration hooks plus the manifests in ``MHUB_REGISTRY`` directories,
without importing torch. Names resolve as ``arch`` (its default weights) or ``arch.tag``; an architecture's
aliases (timm's names for it, say) resolve the same way.

Local manifests (``MHUB_REGISTRY``) may add weight sets but never take over what installed plugins
registered: an entry whose name a plugin already registered is ignored, and a local ``default = true``
does not re-point the default of an architecture that has plugin-registered weights.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import plugins
from ._errors import ManifestError, MhubError, NoWeightsError, PluginError, UnknownModelError
from ._lazy import is_reference
from ._manifest import NAME_RE, load_manifest
from ._specs import ArchSpec, WeightSpec

BUILTIN_REFERENCE_LIBRARIES = ("torchvision", "timm")
ARCH_FIELDS = {"defaults", "paper", "first_conv", "classifier", "aux_classifiers", "num_params", "description",
               "aliases"}


@dataclass
class Converter:
    name: str
    function: Any
    version: int
    plugin: str


@dataclass
class Registry:
    """Everything the plugins registered; duplicates are kept out and reported by name."""

    archs: dict[str, ArchSpec] = field(default_factory=dict)
    weights: dict[str, WeightSpec] = field(default_factory=dict)
    converters: dict[str, Converter] = field(default_factory=dict)
    sources: dict[str, tuple[Any, str]] = field(default_factory=dict)
    reference_models: dict[str, tuple[Any, str]] = field(default_factory=dict)  # library -> (builder, plugin)
    aliases: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (arch, tag or None)
    conflicts: dict[str, str] = field(default_factory=dict)  # name -> error message

    # -- queries ---------------------------------------------------------------------------------
    def tags(self, arch: str) -> list[WeightSpec]:
        """The weight sets of ``arch``, default first."""
        specs = [w for w in self.weights.values() if w.model == arch]
        return sorted(specs, key=lambda w: not w.default)

    def default_weights(self, arch: str) -> WeightSpec | None:
        specs = self.tags(arch)
        return specs[0] if specs else None

    def arch(self, name: str) -> ArchSpec:
        """The architecture called ``name`` or aliased by it (an ``arch.tag`` name's tag is ignored)."""
        arch_name = name.split(".", 1)[0]
        if arch_name in self.aliases:
            arch_name = self.aliases[arch_name][0]
        if arch_name in self.conflicts:
            raise PluginError(self.conflicts[arch_name])
        try:
            return self.archs[arch_name]
        except KeyError:
            raise UnknownModelError(unknown_name_message("model", arch_name, [*self.archs, *self.aliases])) from None

    def resolve(self, name: str) -> tuple[ArchSpec, WeightSpec | None]:
        """Split ``arch[.tag]`` into its architecture and weight set (the default when no tag is given).

        An alias resolves like the architecture it names; a bare alias that carries a tag selects that tag,
        and so does the alias with upstream's spelling of that tag: ours less its image-size suffix
        (``vit_large_patch32_384.orig_in21k_ft_in1k`` is ``vit_l_32.orig_in21k_ft_in1k_384``). Any other
        part of the alias's tag is no tag (``vit_large_patch32_384.orig`` is an unknown weight set).

        Raises:
            UnknownModelError: no such architecture or tag; the message suggests close matches.
        """
        arch = self.arch(name)
        head, _, tag = name.partition(".")
        alias_tag = self.aliases[head][1] if head in self.aliases else None
        if not tag:
            tag = alias_tag or ""
        elif (alias_tag and alias_tag.startswith(tag) and re.fullmatch(r"_\d+", alias_tag[len(tag):])
              and f"{arch.name}.{tag}" not in self.weights):
            tag = alias_tag  # the alias's weight set under upstream's tag (ours adds a size suffix: _384)
        if not tag:
            return arch, self.default_weights(arch.name)
        full = f"{arch.name}.{tag}"
        if full in self.conflicts:
            raise PluginError(self.conflicts[full])
        if full not in self.weights:
            tags = [w.name for w in self.tags(arch.name)]
            if not tags:
                raise NoWeightsError(f"{self.no_weights_message(arch.name)} (asked for '{name}')")
            raise UnknownModelError(unknown_name_message("weight set", full, tags))
        return arch, self.weights[full]

    def named_weights(self, name: str) -> WeightSpec | None:
        """The weight set ``name`` itself names, or None when it names none.

        ``arch.tag`` names its weight set, and so does an alias, bare or with a tag (upstream's names stand
        for weights: the alias's tag, else the default). A bare architecture name names none (its default
        weights are implied, not asked for), nor does a tag no manifest registers (a contributor's own).
        This is the one rule for "was a weight set named?": :meth:`canonical`, :meth:`arch_for`,
        ``mhub.create`` (whose ``model_args`` apply then) and the tools follow it.

        Raises:
            UnknownModelError: no such architecture or alias.
        """
        self.arch(name)
        if "." not in name and name not in self.aliases:
            return None
        try:
            return self.resolve(name)[1]
        except (UnknownModelError, NoWeightsError):
            return None

    def arch_for(self, name: str, **model_args: Any) -> ArchSpec:
        """The architecture as the weight set ``name`` needs it: its ``model_args`` merged into the defaults.

        A bare architecture name (or a tag nobody registered yet, e.g. a contributor's own) gives the
        architecture unchanged; ``model_args`` given here override the weight set's. Tools that build models
        for a checkpoint (convert, validate, manifest) use this, so a ViT weight set trained at 384 px is
        built at 384 px.
        """
        arch = self.arch(name)
        spec = self.named_weights(name)
        merged = {**(spec.model_args if spec is not None else {}), **model_args}
        return dataclasses.replace(arch, defaults={**arch.defaults, **merged}) if merged else arch

    def canonical(self, name: str) -> str:
        """``arch`` or ``arch.tag`` with an alias replaced by the architecture (and tag) it stands for."""
        arch, _ = self.resolve(name)  # an unknown tag is an error here
        spec = self.named_weights(name)
        return spec.name if spec is not None else arch.name

    def weights_for(self, name: str) -> WeightSpec:
        """The weight set ``arch[.tag]`` names; an error when the architecture has none."""
        arch, spec = self.resolve(name)
        if spec is None:
            raise NoWeightsError(self.no_weights_message(arch.name))
        return spec

    def no_weights_message(self, arch: str) -> str:
        """Says ``arch`` has no weights, naming variants that do (``mnasnet0_5`` -> ``mnasnet0_5_v1stem``)."""
        variants = sorted(w.name for w in self.weights.values()
                          if w.model.startswith(arch + "_") and w.default)
        hint = f"; weights exist for the variant(s) {', '.join(variants)}" if variants else ""
        return f"'{arch}' has no pretrained weights registered{hint}"

    def list_models(self, patterns: Iterable[str] = (), *, pretrained: bool = False,
                    family: str | None = None) -> list[str]:
        """Sorted names: architectures, or ``arch.tag`` weight sets when ``pretrained``.

        A pattern also matches through an architecture's aliases (``vit_base*`` finds ``vit_b_16``); the
        canonical names are returned.
        """
        patterns = list(patterns) or ["*"]
        names_of: dict[str, list[str]] = {a: [a] for a in self.archs}
        for alias, (target, _) in self.aliases.items():
            names_of.setdefault(target, []).append(alias)
        if pretrained:
            candidates = [(w.name, w.model, [f"{n}.{w.tag}" for n in names_of.get(w.model, [w.model])])
                          for w in self.weights.values()]
        else:
            candidates = [(a.name, a.name, names_of[a.name]) for a in self.archs.values()]
        return sorted(
            name for name, arch, spellings in candidates
            if (family is None or self.archs[arch].family == family)
            and any(fnmatch.fnmatchcase(s, p) for s in spellings for p in patterns)
        )

    def converter(self, name: str) -> Converter:
        try:
            return self.converters[name]
        except KeyError:
            raise UnknownModelError(unknown_name_message("converter", name, self.converters)) from None

    # -- building --------------------------------------------------------------------------------
    def _add(self, table: dict, name: str, value: Any, kind: str, plugin: str) -> None:
        if name in self.conflicts:
            return
        if name in table:
            existing = table[name]
            other = existing[1] if isinstance(existing, tuple) else existing.plugin
            message = (f"{kind} '{name}' is registered by both {_who(other)} and {_who(plugin)}; "
                       "uninstall one or restrict MHUB_LOAD_PLUGINS")
            self.conflicts[name] = message
            del table[name]
            _report(plugin, message)
            return
        table[name] = value

    def add_model(self, plugin: str, name: str, builder: Any, *, family: str, **meta: Any) -> None:
        unknown = set(meta) - ARCH_FIELDS
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise PluginError(f"invalid architecture name {name!r}")
        if unknown:
            raise PluginError(f"model '{name}': unknown field(s) {sorted(unknown)}")
        if not is_reference(builder):
            raise PluginError(f"model '{name}': builder {builder!r} is not a callable or 'module:function'")
        if not isinstance(family, str) or not family:
            raise PluginError(f"model '{name}': family must be a non-empty string")
        if not isinstance(meta.get("defaults") or {}, dict):
            raise PluginError(f"model '{name}': defaults must be a dict")
        aux = meta.get("aux_classifiers") or ()
        if not isinstance(aux, (list, tuple)) or not all(isinstance(prefix, str) and prefix for prefix in aux):
            raise PluginError(f"model '{name}': aux_classifiers must be a list of state-dict prefixes")
        aliases = _alias_table(name, meta.get("aliases"))
        spec = ArchSpec(name=name, builder=builder, family=family, plugin=plugin,
                        **{**meta, "defaults": dict(meta.get("defaults") or {}), "aux_classifiers": tuple(aux),
                           "aliases": aliases})
        self._add(self.archs, name, spec, "architecture", plugin)
        for alias, tag in aliases.items():
            self._add(self.aliases, alias, (name, tag), "alias", plugin)

    def add_manifest(self, plugin: str, path: str | os.PathLike) -> None:
        for spec in load_manifest(path, plugin=plugin):
            existing = self.weights.get(spec.name)
            if not plugin and existing is not None and existing.plugin:
                _report("", f"{spec.origin}: {spec.name}: ignored: plugin '{existing.plugin}' already registers "
                            "this weight set, and local manifests may add weight sets, not replace them")
                continue
            self._add(self.weights, spec.name, spec, "weight set", plugin)

    def add_converter(self, plugin: str, name: str, function: Any, *, version: int = 1) -> None:
        if not isinstance(name, str) or not name or not is_reference(function):
            raise PluginError(f"converter {name!r}: needs a name and a callable or 'module:function'")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise PluginError(f"converter '{name}': version must be a positive integer")
        self._add(self.converters, name, Converter(name, function, version, plugin), "converter", plugin)

    def add_source(self, plugin: str, scheme: str, fetcher: Any) -> None:
        if not isinstance(scheme, str) or not scheme.isidentifier() or not is_reference(fetcher):
            raise PluginError(f"source {scheme!r}: needs a scheme name and a fetcher")
        self._add(self.sources, scheme, (fetcher, plugin), "source scheme", plugin)

    def add_reference_model(self, plugin: str, library: str, builder: Any) -> None:
        if not isinstance(library, str) or not library.isidentifier() or not is_reference(builder):
            raise PluginError(f"reference implementation {library!r}: needs a library name and a builder")
        if library in BUILTIN_REFERENCE_LIBRARIES:
            raise PluginError(f"reference implementation '{library}' is built in")
        self._add(self.reference_models, library, (builder, plugin), "reference implementation", plugin)

    def check(self) -> None:
        """Drop weight sets whose architecture or converter nobody registered, with a warning."""
        for name, spec in list(self.weights.items()):
            problem = None
            if spec.model not in self.archs and spec.model not in self.conflicts:
                problem = f"unknown architecture '{spec.model}'"
            elif spec.converter and spec.converter not in self.converters:
                problem = f"unknown converter '{spec.converter}'"
            if problem:
                del self.weights[name]
                _report(spec.plugin, f"{spec.origin}: {name}: skipped: {problem}")
        for name, spec in list(self.weights.items()):
            if spec.plugin or not spec.default:
                continue
            owners = sorted({w.plugin for w in self.weights.values() if w.model == spec.model and w.plugin})
            if owners:  # a local manifest may not re-point what an installed plugin made the default
                self.weights[name] = dataclasses.replace(spec, default=False)
                _report("", f"{spec.origin}: {name}: 'default = true' ignored: '{spec.model}' has weights from "
                            f"plugin '{owners[0]}', whose default stays; ask for '{name}' by its tag")
        for arch in {w.model for w in self.weights.values()}:
            defaults = [w.name for w in self.tags(arch) if w.default]
            if len(defaults) > 1:
                _report(self.weights[defaults[1]].plugin,
                        f"'{arch}' has several default weight sets: {', '.join(defaults)}")

    def check_aliases(self) -> None:
        """Drop aliases that shadow an architecture or select a tag nobody registered, with a warning."""
        for alias, (target, tag) in list(self.aliases.items()):
            problem = None
            if alias in self.archs:
                problem = f"alias '{alias}' of '{target}' is also an architecture name"
            elif target not in self.archs:
                problem = f"alias '{alias}' names '{target}', which is not registered"
            elif tag is not None and f"{target}.{tag}" not in self.weights:
                problem = f"alias '{alias}' selects '{target}.{tag}', which no manifest registers"
            if problem:
                del self.aliases[alias]
                _report(self.archs[target].plugin if target in self.archs else "", f"{problem}; alias skipped")


def _alias_table(name: str, aliases: Any) -> dict[str, str | None]:
    """Validate the ``aliases`` of a model registration: a list of names or a ``{alias: tag | None}`` dict."""
    if aliases is None:
        return {}
    if isinstance(aliases, (list, tuple)):
        aliases = dict.fromkeys(aliases)
    if not isinstance(aliases, dict):
        raise PluginError(f"model '{name}': aliases must be a list of names or a dict of name -> tag")
    for alias, tag in aliases.items():
        if not isinstance(alias, str) or not NAME_RE.fullmatch(alias) or alias == name:
            raise PluginError(f"model '{name}': invalid alias {alias!r}")
        if tag is not None and (not isinstance(tag, str) or not NAME_RE.fullmatch(tag)):
            raise PluginError(f"model '{name}': alias '{alias}' names an invalid tag {tag!r}")
    return dict(aliases)


def _who(plugin: str) -> str:
    return f"plugin '{plugin}'" if plugin else "an MHUB_REGISTRY manifest"


def _report(plugin: str, problem: str) -> None:
    """Warn about a problem; charge it to the plugin when a plugin (not MHUB_REGISTRY) caused it."""
    if plugin:
        plugins.record_problem(plugin, problem)
    else:
        plugins.warn(f"MHUB_REGISTRY: {problem}")


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    import difflib  # on this error path only: mhub list starts faster without it

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} '{name}'{hint}"


def registry_dirs() -> list[Path]:
    """Directories of extra manifests named by ``MHUB_REGISTRY`` (``os.pathsep``-separated)."""
    value = os.environ.get("MHUB_REGISTRY", "")
    return [Path(p) for p in value.split(os.pathsep) if p]


_registry: Registry | None = None


def get_registry() -> Registry:
    """The registry index, built on first use."""
    global _registry
    if _registry is None:
        _registry = plugins.build_registry(_build)
    return _registry


def reset_registry() -> None:
    """Forget the index so the next :func:`get_registry` rebuilds it (after plugins or env change)."""
    global _registry
    _registry = None


def _guarded(plugin: str, action, *args, **kwargs) -> None:
    try:
        action(plugin, *args, **kwargs)
    except (MhubError, TypeError) as error:
        plugins.record_problem(plugin, f"skipped invalid registration: {error}")


def _build() -> Registry:
    registry = Registry()

    def registrar(action):
        return lambda plugin: (lambda *args, **kwargs: _guarded(plugin, action, *args, **kwargs))

    plugins.call_each("register_models", registrar(registry.add_model))
    plugins.call_each("register_converters", registrar(registry.add_converter))
    plugins.call_each("register_sources", registrar(registry.add_source))
    plugins.call_each("register_weights", registrar(registry.add_manifest))
    plugins.call_each("register_reference_models", registrar(registry.add_reference_model))
    for directory in registry_dirs():
        for path in sorted(directory.glob("*.toml")):
            try:
                registry.add_manifest("", path)
            except ManifestError as error:
                plugins.warn(f"MHUB_REGISTRY manifest skipped: {error}")
    registry.check()
    registry.check_aliases()
    return registry
