"""``mhub pull``, ``mhub cache ls|rm|verify|prune`` and ``mhub mirror``.

Imports only click and mhub's torch-free modules at import time (``mhub --help`` loads this module);
the hub client is imported inside the commands.
"""

from __future__ import annotations

import click

from ._output import emit_json, human_size, progress_enabled


@click.command("pull")
@click.argument("names", nargs=-1, required=True)
@click.option("--endpoint", metavar="URL", help="Mirror serving <URL>/blobs/sha256/<hex>: http(s)://, file:// or "
              "s3:// (default $MHUB_ENDPOINT).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of paths.")
def pull_command(names: tuple[str, ...], endpoint: str | None, quiet: bool, as_json: bool) -> None:
    """Fetch, verify and cache weights (NAME or NAME.TAG); print the local path of each.

    \b
    An entry giving only an upstream sha256 prefix is a weak check: pulling it warns
    once, and MHUB_REQUIRE_FULL_HASH=1 refuses it. Each source gets at most
    1 + MHUB_RETRIES attempts (the first, then MHUB_RETRIES retries); MHUB_MIN_SPEED
    (bytes/s over MHUB_TIMEOUT seconds) and MHUB_MAX_SIZE (for entries without a size)
    end a slow or endless download.
    """
    from ..hub import fetch

    progress = progress_enabled(quiet or as_json)
    records = []
    for name in names:
        pulled = fetch(name, endpoint=endpoint, progress=progress)
        if as_json:
            records.append(pulled.to_dict())
        else:
            click.echo(str(pulled.path))
    if as_json:
        emit_json(records)


@click.group("cache")
def cache_command() -> None:
    """Inspect and maintain the local weights cache ($MHUB_HOME)."""


@cache_command.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_ls(as_json: bool) -> None:
    """List cached weight sets with their size, digest and path."""
    from ..hub import Cache

    cache = Cache.current()
    entries = cache.entries()
    if as_json:
        emit_json({"root": str(cache.root), "entries": entries})
        return
    click.echo(f"cache {cache.root}")
    for entry in entries:
        state = "" if entry["present"] else "  (blob missing)"
        click.echo(f"{entry['name']:40s} {human_size(entry.get('size')):>10s}  sha256 {entry['sha256'][:16]}  "
                   f"{entry['hash']}{state}")
        click.echo(f"  {entry['path']}")
        for conv in entry["conversions"]:
            click.echo(f"  converted {conv['converter']}@v{conv['version']}: {human_size(conv['size'])}, "
                       f"sha256 {conv['sha256'][:16]}")


@cache_command.command("rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_rm(name: str, as_json: bool) -> None:
    """Remove NAME (model.tag, or model for all its tags) and the blobs nothing else uses."""
    from .._errors import MhubError
    from ..hub import Cache

    result = Cache.current().remove(name)
    if not result["removed"]:
        raise MhubError(f"'{name}' is not in the cache (see `mhub cache ls`)")
    if as_json:
        emit_json(result)
    else:
        click.echo(f"removed {', '.join(result['removed'])}; freed {human_size(result['freed'])}")


@cache_command.command("verify")
@click.option("--delete", is_flag=True, help="Delete corrupt blobs and bad names (links themselves, never "
                                             "their targets) so the next pull fetches them again.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_verify(delete: bool, as_json: bool) -> None:
    """Re-hash every cached blob and check every name; exit 1 if anything is wrong.

    A blob must hash to its name and be a regular file; a name must lead to one of the cache's blobs.
    Links out of the cache are reported, never followed. Sound blobs are stamped as verified by you.
    """
    from ..hub import Cache

    report = Cache.current().verify(delete=delete)
    action = " (deleted)" if delete else ""
    if as_json:
        emit_json(report)
    else:
        for bad in report["corrupt"]:
            names = ", ".join(bad["names"]) or "no name"
            click.echo(f"CORRUPT {bad['blob']} ({names}): {bad['reason']}{action}")
        for gone in report["missing"]:
            click.echo(f"MISSING {gone['name']}: blob {gone['blob']} is gone")
        for name in report["bad_names"]:
            click.echo(f"BAD NAME {name['path']}: {name['target']}, not a blob of this cache{action}")
        click.echo(f"checked {report['checked']} blobs ({human_size(report['bytes'])}): "
                   f"{len(report['corrupt'])} corrupt, {len(report['missing'])} missing, "
                   f"{len(report['bad_names'])} bad names")
    if report["corrupt"] or report["missing"] or report["bad_names"]:
        raise SystemExit(1)


@cache_command.command("prune")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_prune(dry_run: bool, as_json: bool) -> None:
    """Delete unreferenced blobs, stale conversions, leftover partial downloads and temp files.

    Safe while pulls run (a blob a running pull may record is spared); links are removed, never followed.
    """
    from .._registry import get_registry
    from ..hub import Cache
    from ..hub.convert import IDENTITY

    converters = get_registry().converters

    def keep(name: str, version: int) -> bool:  # only the installed converter's current version
        return name == IDENTITY or (name in converters and converters[name].version == version)

    result = Cache.current().prune(dry_run=dry_run, keep_conversion=keep)
    if as_json:
        emit_json(result)
        return
    for path in result["removed"]:
        click.echo(("would remove " if dry_run else "removed ") + path)
    click.echo(f"{'would free' if dry_run else 'freed'} {human_size(result['freed'])}")


@click.command("mirror")
@click.argument("target")
@click.argument("names", nargs=-1)
@click.option("--endpoint", metavar="URL", help="Mirror to pull missing files from (default $MHUB_ENDPOINT).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def mirror_command(target: str, names: tuple[str, ...], endpoint: str | None, quiet: bool, as_json: bool) -> None:
    """Write a mirror tree into TARGET for NAMES (default: everything cached).

    \b
    TARGET is a folder, or object storage (s3://bucket/prefix with mhub[s3];
    any fsspec protocol) written with the storage library's own credentials;
    blobs already there with the right size are skipped. Point clients at it:
      mhub mirror /srv/mhub resnet50 && python -m http.server -d /srv/mhub 8000
      MHUB_ENDPOINT=http://host:8000 mhub pull resnet50
      mhub mirror s3://weights/mhub resnet50
      MHUB_ENDPOINT=s3://weights/mhub mhub pull resnet50
    """
    from ..hub.mirror import write_mirror

    records = write_mirror(target, names, endpoint=endpoint, progress=progress_enabled(quiet or as_json))
    if as_json:
        emit_json(records)
        return
    for record in records:
        click.echo(f"{record['name']:40s} {human_size(record['size']):>10s}  blobs/sha256/{record['sha256']}")
    click.echo(f"{len(records)} file(s) in {target}")
