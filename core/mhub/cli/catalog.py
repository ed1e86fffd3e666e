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
    """Show an architecture and its weight sets (NAME or NAME.TAG)."""
    registry = get_registry()
    arch = registry.arch(name)
    specs = [registry.weights_for(name)] if "." in name else registry.tags(arch.name)
    default = registry.default_weights(arch.name)
    data = {
        "name": arch.name,
        "family": arch.family,
        "builder": arch.builder_name(),
        "plugin": arch.plugin,
        "num_params": arch.num_params,
        "paper": arch.paper,
        "defaults": dict(arch.defaults),
        "weights": [
            {**spec.to_dict(), "name": spec.name, "default": spec is default, "hash": spec.hash_strength}
            for spec in specs
        ],
    }
    if as_json:
        emit_json(data)
        return
    click.echo(f"{arch.name}  (family {arch.family}, plugin {arch.plugin})")
    click.echo(f"  builder     {data['builder']}")
    if arch.num_params:
        click.echo(f"  parameters  {arch.num_params:,}")
    if arch.paper:
        click.echo(f"  paper       {arch.paper}")
    if not specs:
        click.echo("  weights     none registered")
    for spec in specs:
        marker = " (default)" if spec is default else ""
        click.echo(f"  {spec.name}{marker}")
        metrics = ", ".join(f"{k} {v}" for k, v in spec.metrics.items()) or "-"
        hash_text = (f"sha256 {spec.sha256}" if spec.sha256 else
                     f"upstream prefix only: {spec.sha256_prefix} ({len(spec.sha256_prefix)} hex; weaker check)")
        click.echo(f"    metrics   {metrics}")
        click.echo(f"    license   {spec.license}")
        click.echo(f"    size      {human_size(spec.size)}  format {spec.format}"
                   + (f"  converter {spec.converter}" if spec.converter else ""))
        click.echo(f"    hash      {hash_text}")
        for source in spec.sources:
            click.echo(f"    source    {source}")


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
