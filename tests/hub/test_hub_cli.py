"""`mhub pull` output and errors, and what the hub commands import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hub_fixtures import child_env, entry, run_child, sha256, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
pytestmark = pytest.mark.usefixtures("tiny_plugin")
DATA = os.urandom(100_000)

# Runs the CLI (with the tiny plugin) in-process and reports which heavy modules it imported.
PROBE = """
import sys
import hub_fixtures
sys.argv = ["mhub", *{args!r}]
try:
    hub_fixtures.main()
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "requests", "huggingface_hub", "safetensors", "fsspec") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def heavy_imports(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                            env=env, timeout=120)
    return next(line for line in result.stderr.splitlines() if line.startswith("HEAVY="))[len("HEAVY="):]


@pytest.fixture
def env(server, tmp_path, monkeypatch, isolated_home):
    url = server.add("/w/tiny.safetensors", DATA)
    registry = write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA),
                              entry("gone", [server.url + "/w/missing.bin"], DATA + b"!"))
    return child_env(MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(registry))


def test_pull_prints_the_path_and_json(env, server, isolated_home):
    result = run_child("pull", "tinynet.x", env=env)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert path == str(isolated_home / "names" / "tinynet.x" / "tiny.safetensors")
    assert result.stderr == ""  # not a terminal: no progress bar
    record = json.loads(run_child("pull", "tinynet.x", "--json", env=env).stdout)[0]
    assert record["path"] == path and record["sha256"] == sha256(DATA) and record["size"] == len(DATA)
    assert record["downloaded_from"] is None  # the second pull was a cache hit
    assert server.count("/w/tiny.safetensors") == 1


def test_pull_failure_is_one_line_naming_the_url(env, server):
    result = run_child("pull", "tinynet.gone", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {server.url}/w/missing.bin: HTTP 404 Not Found"


def test_pull_offline_failure_is_one_line(env):
    result = run_child("pull", "tinynet.x", env={**env, "MHUB_OFFLINE": "1"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: offline mode (MHUB_OFFLINE=1): tinynet.x is not in")


def test_progress_bar_only_on_a_terminal_and_not_when_quiet(env, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    def stderr_on_a_terminal(*args: str) -> str:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0x0
        child = subprocess.Popen([sys.executable, "-m", "hub_fixtures", *args], stdout=subprocess.PIPE,
                                 stderr=follower, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        child.wait(timeout=60)
        os.close(leader)
        assert child.returncode == 0
        return b"".join(chunks).decode(errors="replace")

    assert stderr_on_a_terminal("pull", "tinynet.x", "--quiet") == ""
    env["MHUB_HOME"] = str(tmp_path / "another-home")
    shown = stderr_on_a_terminal("pull", "tinynet.x")
    assert "tinynet.x:" in shown and "97.7k" in shown  # a tqdm bar, labelled with the name and size


@pytest.mark.parametrize("args", [["pull", "--help"], ["cache", "--help"], ["mirror", "--help"], ["cache", "ls"],
                                  ["cache", "verify"], ["cache", "prune", "--dry-run"]])
def test_hub_commands_import_no_heavy_module(env, args):
    assert heavy_imports(*args, env=env) == ""


def test_pulling_safetensors_needs_neither_torch_nor_huggingface_hub(env):
    assert heavy_imports("pull", "tinynet.x", "--quiet", env=env) == "requests"
