"""The ``mhub`` command line. Subcommands load lazily so ``mhub list`` never imports torch."""

from __future__ import annotations

import sys
import warnings

import click

from .. import __version__, plugins
from .._errors import MhubError

# command name -> "module:attribute"; each module is imported only when its command runs or --help lists it.
COMMANDS = {
    "list": "mhub.cli.catalog:list_command",
    "info": "mhub.cli.catalog:info_command",
    "plugins": "mhub.cli.catalog:plugins_command",
    "pull": "mhub.cli.hub:pull_command",
    "cache": "mhub.cli.hub:cache_command",
    "mirror": "mhub.cli.hub:mirror_command",
    "predict": "mhub.cli.predict:predict_command",
    "eval": "mhub.cli.evaluate:eval_command",
    "bench": "mhub.cli.bench:bench_command",
}


class LazyGroup(click.Group):
    """A click group whose built-in commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        drop_commands_of_skipped_plugins(self)
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            drop_commands_of_skipped_plugins(self)
        if name in self.commands:
            return self.commands[name]
        if name not in COMMANDS:
            return None
        from .._lazy import import_string

        return import_string(COMMANDS[name])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MhubError as error:
            raise click.ClickException(str(error)) from error


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"mhub: warning: {message}", file=sys.stderr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mhub")
def cli() -> None:
    """mhub: pretrained vision models, verified.

    \b
    List what the installed plugins register, pull and verify weights into the cache,
    and (with the toolchain) convert, hash, validate and publish checkpoints.
    """


def add_plugin_commands(group: click.Group) -> None:
    """Run every plugin's ``register_commands`` hook on a group of its own, then add what it defined.

    A plugin whose hook raises contributes no command at all; a command whose name is taken is refused.
    A plugin skipped later (one of its registration hooks raises while the registry is built) loses its
    commands again: see :func:`drop_commands_of_skipped_plugins`.
    """
    owners = group.__dict__.setdefault("_plugin_commands", {})  # command name -> plugin that added it

    def commit(plugin: str, staged: click.Group) -> None:
        for name, command in staged.commands.items():
            if name in COMMANDS or owners.get(name, plugin) != plugin:
                plugins.record_problem(plugin, f"command '{name}' not added: the name is already taken")
                continue
            group.add_command(command, name)
            owners[name] = plugin
            info = plugins.plugin_info(plugin)
            if info is not None and name not in info.commands:
                info.commands.append(name)

    plugins.call_each("register_commands", lambda plugin: click.Group(plugin), commit)


def drop_commands_of_skipped_plugins(group: click.Group) -> None:
    """Remove from ``group`` the commands of plugins no longer loaded, so nothing of a skipped plugin stays.

    A plugin's registration hooks run when the registry is first built, after its commands were added; one
    that raises gets the plugin skipped. So the registry is built before a plugin command is looked up
    (``mhub NAME``, ``mhub --help``): a plugin command runs only for a plugin loaded in full. Built-in
    commands never get here, so ``mhub cache`` does not build it.
    """
    owners = group.__dict__.get("_plugin_commands")  # command name -> plugin that added it
    if not owners:
        return
    from .._registry import get_registry

    get_registry()
    for name, plugin in list(owners.items()):
        info = plugins.plugin_info(plugin)
        if info is None or not info.loaded:
            group.commands.pop(name, None)
            del owners[name]


def main(args: list[str] | None = None, prog_name: str | None = "mhub") -> None:
    """Entry point of the ``mhub`` script and ``python -m mhub``.

    Every error, usage errors included, is one line on stderr: ``Error: ...``; exit status 1 for a failed
    command, 2 for a malformed command line (click's convention).
    """
    warnings.showwarning = _one_line_warning
    add_plugin_commands(cli)
    try:
        result = cli.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as error:
        print(f"Error: {error.format_message()}", file=sys.stderr)
        sys.exit(error.exit_code)
    except click.Abort:
        print("Aborted.", file=sys.stderr)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
