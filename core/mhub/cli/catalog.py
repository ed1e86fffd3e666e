"""``mhub list``, ``mhub info`` and ``mhub plugins``: read the registry index, never import torch."""

from __future__ import annotations

import sys

import click

from .._errors import UnknownModelError
from .._registry import get_registry, unknown_name_message
from ..plugins import plugin_infos
from ._output import emit_json, human_size


@click.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--pretrained", is_flag=True, help="List weight sets (arch.tag) instead of architectures.")
@click.option("--family", help="Only this family (e.g. resnet).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(patterns: tuple[str, ...], pretrained: bool, family: str | None, as_json: bool) -> None:
    """List registered architectures, or weight sets with --pretrained. PATTERNS are globs ('resnext*')."""
    registry = get_registry()
    families = {arch.family for arch in registry.archs.values()}
    if family is not None and family not in families:
        raise UnknownModelError(unknown_name_message("family", family, families))
    names = registry.list_models(patterns, pretrained=pretrained, family=family)
    if as_json:
        emit_json(names)
    else:
        for name in names:
            click.echo(name)


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_command(name: str, as_json: bool) -> None:
    """Show an architecture and its weight sets (NAME or NAME.TAG; aliases are accepted).

    Everything registered is shown: the architecture's builder, defaults, aliases and the state-dict
    prefixes of its first convolution, classifier and auxiliary classifiers; each weight set's sources, hash
    strength, size, licence, metrics, preprocessing, classes, model arguments and reference outputs.
    """
    registry = get_registry()
    arch = registry.arch(name)
    named = registry.resolve(name)[1] if "." in name or name in registry.aliases else None
    specs = [named] if named is not None else registry.tags(arch.name)
    default = registry.default_weights(arch.name)
    data = {
        "name": arch.name,
        "family": arch.family,
        "description": arch.description,
        "builder": arch.builder_name(),
        "plugin": arch.plugin,
        "num_params": arch.num_params,
        "paper": arch.paper,
        "defaults": dict(arch.defaults),
        "first_conv": arch.first_conv,
        "classifier": arch.classifier,
        "aux_classifiers": list(arch.aux_classifiers),
        "aliases": dict(arch.aliases),
        "weights": [
            {**spec.to_dict(), "name": spec.name, "default": spec is default, "hash": spec.hash_strength,
             "reference_path": str(spec.reference_path) if spec.reference_path else None}
            for spec in specs
        ],
    }
    if as_json:
        emit_json(data)
        return
    click.echo(f"{arch.name}  (family {arch.family}, plugin {arch.plugin or 'local'})")
    rows = [("description", arch.description), ("builder", data["builder"]),
            ("parameters", f"{arch.num_params:,}" if arch.num_params else None), ("paper", arch.paper),
            ("defaults", _pairs(arch.defaults)), ("first conv", arch.first_conv), ("classifier", arch.classifier),
            ("aux heads", ", ".join(arch.aux_classifiers)),
            ("aliases", ", ".join(a + (f" (-> {t})" if t else "") for a, t in arch.aliases.items()))]
    _rows(rows, indent=2, width=11)
    if not specs:
        click.echo("  weights     none registered")
    for spec in specs:
        click.echo(f"  {spec.name}{' (default)' if spec is default else ''}")
        hash_text = (f"sha256 {spec.sha256}" if spec.sha256 else
                     f"upstream prefix only: {spec.sha256_prefix} ({len(spec.sha256_prefix)} hex; weaker check)")
        classes = "none (headless weights)" if spec.num_classes == 0 else str(spec.num_classes)
        rows = [("description", spec.description),
                ("metrics", ", ".join(f"{k} {v}" for k, v in spec.metrics.items()) or "-"),
                ("license", spec.license), ("classes", classes),
                ("preprocess", _pairs(spec.preprocess) or "ImageNet defaults"),
                ("model args", _pairs(spec.model_args)),
                ("size", f"{human_size(spec.size)}  format {spec.format}"
                         + (f"  converter {spec.converter}" if spec.converter else "")),
                ("hash", hash_text),
                *[("source", source) for source in spec.sources],
                ("first conv", spec.first_conv), ("classifier", spec.classifier),
                ("reference", str(spec.reference_path) if spec.reference_path else None),
                ("manifest", spec.origin)]
        _rows(rows, indent=4, width=11)


def _pairs(mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def _rows(rows, *, indent: int, width: int) -> None:
    for label, value in rows:
        if value:
            click.echo(f"{' ' * indent}{label:<{width}} {value}")


@click.command("plugins")
@click.option("--check", "check", metavar="NAME",
              help="Self-test one plugin (entry-point or distribution name) for its author; exit 1 on problems.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_command(check: str | None, as_json: bool) -> None:
    """List plugins with their versions, hooks and status.

    \b
    --check NAME imports the plugin's entry point in a fresh interpreter that refuses torch,
    checks its hooks, registrations and manifests, imports every builder, converter, source
    fetcher and reference implementation it names, and reads every reference-output file.
    """
    if check is not None:
        _check(check, as_json)
        return
    infos = plugin_infos()
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    for info in infos:
        version = f" {info.version}" if info.version else ""
        commands = f"  commands: {', '.join(info.commands)}" if info.commands else ""
        click.echo(f"{info.name}{version} [{info.distribution or 'in-process'}]  hooks: {', '.join(info.hooks) or '-'}"
                   f"{commands}  status: {info.status}")


def _check(name: str, as_json: bool) -> None:
    from .._plugin_check import FAIL, check_plugin

    results = check_plugin(name)
    failed = sum(check.level == FAIL for _, checks in results for check in checks)
    if as_json:
        emit_json([{"plugin": info.to_dict() if info else None, "checks": [c.to_dict() for c in checks]}
                   for info, checks in results])
    else:
        for info, checks in results:
            if info is not None:
                click.echo(f"plugin {info.name}")
            for check in checks:
                click.echo(check.line())
        click.echo(f"{failed} problem{'s' if failed != 1 else ''} found" if failed else "all checks passed")
    if failed:
        sys.exit(1)
