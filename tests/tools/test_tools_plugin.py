"""The toolchain is a plugin adding four commands; loading it (and `mhub hash`) never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_cli

HEAVY = ("torch", "numpy", "safetensors", "requests", "huggingface_hub")

# Runs the CLI in-process and reports which heavy modules it imported.
PROBE = """
import runpy, sys
sys.argv = ["mhub", *{args!r}]
try:
    runpy.run_module("mhub", run_name="__main__")
except SystemExit:
    pass
print("HEAVY=" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def test_commands_are_registered_by_the_tools_plugin():
    help_text = run_cli("--help").stdout
    for command in ("convert", "hash", "validate", "manifest"):
        assert f"  {command} " in help_text
    tools = next(p for p in json.loads(run_cli("plugins", "--json").stdout) if p["name"] == "tools")
    assert tools["hooks"] == ["register_commands"] and tools["status"] == "ok"


def test_without_the_plugin_the_commands_are_gone():
    result = run_cli("hash", "--help", env={"MHUB_LOAD_PLUGINS": "resnet"}, check=False)
    assert result.returncode == 2 and "No such command 'hash'" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["validate", "--help"],
                                  ["manifest", "--help"], ["hash", "--help"], ["hash", "HASHED"]])
def test_loading_the_commands_does_not_import_heavy_modules(args, tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"x" * 1000)
    args = [str(target) if a == "HASHED" else a for a in args]
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True,
                            text=True)
    heavy = [line for line in result.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], result.stderr[-2000:]
    if args[0] == "hash" and args[1] != "--help":
        assert result.stdout.split()[1] == "1000"
