"""`mhub mirror` trees served by `python -m http.server` (or a shared folder) and `MHUB_ENDPOINT`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hub_fixtures import entry, sha256, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
from loopback import Fault

import mhub
from mhub.cli import cli

pytestmark = pytest.mark.usefixtures("tiny_plugin")
FULL = os.urandom(250_000)
PREFIXED = os.urandom(180_000)


@pytest.fixture
def http_server():
    """Start ``python -m http.server`` on 127.0.0.1 for a directory; yields (start, log lines)."""
    processes = []

    def start(directory: Path) -> tuple[str, subprocess.Popen]:
        process = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                                    "--directory", str(directory)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes.append(process)
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        port = re.search(r"port (\d+)", line).group(1)
        return f"http://127.0.0.1:{port}", process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def test_mirror_served_by_http_server_is_enough_with_every_source_down(server, http_server, tmp_path, monkeypatch,
                                                                       isolated_home):
    url_full = server.add("/full.bin", FULL)
    url_prefixed = server.add("/prefixed.pth", PREFIXED)
    write_registry(tmp_path / "registry", monkeypatch, entry("full", [url_full], FULL),
                   entry("prefixed", [url_prefixed], PREFIXED, full=False))
    mirror = tmp_path / "mirror"
    result = CliRunner().invoke(cli, ["mirror", str(mirror), "tinynet.full", "tinynet.prefixed", "--json"])
    assert result.exit_code == 0, result.output
    assert (mirror / "blobs" / "sha256" / sha256(FULL)).read_bytes() == FULL
    assert (mirror / "blobs" / "sha256" / sha256(PREFIXED)).read_bytes() == PREFIXED
    assert json.loads((mirror / "names" / "tinynet.prefixed.json").read_text())["sha256"] == sha256(PREFIXED)
    server.stop()  # no source is reachable from here on

    endpoint, process = http_server(mirror)
    monkeypatch.setenv("MHUB_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.setenv("MHUB_ENDPOINT", endpoint)
    assert mhub.pull("tinynet.full").read_bytes() == FULL
    assert mhub.pull("tinynet.prefixed").read_bytes() == PREFIXED
    process.terminate()
    log = process.communicate(timeout=10)[1]
    assert f'"GET /blobs/sha256/{sha256(FULL)} HTTP/1.1" 200' in log
    assert '"GET /names/tinynet.prefixed.json HTTP/1.1" 200' in log
    assert f'"GET /blobs/sha256/{sha256(PREFIXED)} HTTP/1.1" 200' in log


def test_mirror_without_names_copies_everything_cached(server, tmp_path, monkeypatch, isolated_home):
    write_registry(tmp_path / "registry", monkeypatch, entry("full", [server.add("/full.bin", FULL)], FULL))
    mhub.pull("tinynet.full")
    result = CliRunner().invoke(cli, ["mirror", str(tmp_path / "m")])
    assert result.exit_code == 0 and "1 file(s)" in result.output
    assert (tmp_path / "m" / "blobs" / "sha256" / sha256(FULL)).read_bytes() == FULL


def test_endpoint_is_tried_first_and_sources_are_the_fallback(server, tmp_path, monkeypatch, isolated_home):
    source = server.add("/source/full.bin", FULL)
    server.add(f"/mirror/blobs/sha256/{sha256(FULL)}", FULL, faults=[Fault.status(404)])
    write_registry(tmp_path / "registry", monkeypatch, entry("full", [source], FULL))
    monkeypatch.setenv("MHUB_ENDPOINT", server.url + "/mirror")
    assert mhub.pull("tinynet.full").read_bytes() == FULL  # mirror 404 -> source
    assert [r.path for r in server.requests] == [f"/mirror/blobs/sha256/{sha256(FULL)}", "/source/full.bin"]
    CliRunner().invoke(cli, ["cache", "rm", "tinynet.full"])
    server.clear_log()
    assert mhub.pull("tinynet.full").read_bytes() == FULL  # mirror healthy: the source is not asked
    assert [r.path for r in server.requests] == [f"/mirror/blobs/sha256/{sha256(FULL)}"]


def test_a_mirror_serving_wrong_bytes_falls_back_to_the_source(server, tmp_path, monkeypatch, isolated_home):
    source = server.add("/source/full.bin", FULL)
    server.add(f"/mirror/blobs/sha256/{sha256(FULL)}", FULL, faults=[Fault.corrupt(5)])
    write_registry(tmp_path / "registry", monkeypatch, entry("full", [source], FULL))
    assert mhub.pull("tinynet.full", endpoint=server.url + "/mirror").read_bytes() == FULL
    assert server.count("/source/full.bin") == 1


def test_a_mirror_name_index_must_extend_the_upstream_prefix(server, tmp_path, monkeypatch, isolated_home):
    source = server.add("/source/p.pth", PREFIXED)
    server.add("/mirror/names/tinynet.prefixed.json", json.dumps({"sha256": "f" * 64}).encode())
    write_registry(tmp_path / "registry", monkeypatch, entry("prefixed", [source], PREFIXED, full=False))
    assert mhub.pull("tinynet.prefixed", endpoint=server.url + "/mirror").read_bytes() == PREFIXED
    assert [r.path for r in server.requests] == ["/mirror/names/tinynet.prefixed.json", "/source/p.pth"]


def test_a_shared_folder_works_as_a_file_endpoint(server, tmp_path, monkeypatch, isolated_home):
    write_registry(tmp_path / "registry", monkeypatch, entry("full", [server.add("/full.bin", FULL)], FULL))
    CliRunner().invoke(cli, ["mirror", str(tmp_path / "shared"), "tinynet.full"])
    server.stop()
    monkeypatch.setenv("MHUB_HOME", str(tmp_path / "other-home"))
    monkeypatch.setenv("MHUB_ENDPOINT", (tmp_path / "shared").as_uri())
    assert mhub.pull("tinynet.full").read_bytes() == FULL
