"""Run ``mhub`` commands in-process (no torch re-import per call), with the plugins' commands attached."""

from __future__ import annotations

from click.testing import CliRunner

from mhub import plugins
from mhub.cli import cli


def invoke(*args: str, check: bool = True):
    """``mhub ARGS`` through click's test runner; returns the Result (``output`` holds stdout and stderr)."""
    plugins.call_each("register_commands", lambda plugin: cli)
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if check and result.exit_code != 0:
        raise AssertionError(f"mhub {' '.join(args)} exited {result.exit_code}:\n{result.output}")
    return result
