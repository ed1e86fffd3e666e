"""Adds the toolchain commands (convert, hash, validate, manifest) to the ``mhub`` CLI (torch-free at import)."""

from mhub import hookimpl


@hookimpl
def register_commands(cli):
    """Attach the toolchain's click commands to the ``mhub`` group."""
    from .cli import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)
