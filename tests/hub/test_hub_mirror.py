"""`mhub mirror` trees served by `python -m http.server` (or a shared folder) and `MHUB_ENDPOINT`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from hub_fixtures import entry, sha256, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
from loopback import Fault

import mhub
from mhub.cli import cli

pytestmark = [pytest.mark.usefixtures("tiny_plugin"),
              pytest.mark.filterwarnings("ignore:tinynet.prefixed. only the first 8 hex digits")]
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


def test_a_mirror_index_locates_a_prefix_only_file_but_never_supplies_its_digest(server, tmp_path, monkeypatch,
                                                                                 isolated_home):
    """The index used to become the full digest the mirror's bytes were held to, and was recorded as
    trusted: a mirror could vouch for a forged file matching the 32-bit prefix. Now the bytes are held to
    the manifest's prefix like any source's, and pulling says the check is weak."""
    from mhub.hub.client import candidates

    source = server.add("/source/p.pth", PREFIXED)
    index = json.dumps({"name": "tinynet.prefixed", "sha256": sha256(PREFIXED)}).encode()
    server.add("/mirror/names/tinynet.prefixed.json", index)
    server.add(f"/mirror/blobs/sha256/{sha256(PREFIXED)}", PREFIXED)
    write_registry(tmp_path / "registry", monkeypatch, entry("prefixed", [source], PREFIXED, full=False))
    spec = mhub.get_registry().weights_for("tinynet.prefixed")
    (mirror_url, held_to), (source_url, _) = candidates(spec, server.url + "/mirror")
    assert mirror_url == f"{server.url}/mirror/blobs/sha256/{sha256(PREFIXED)}" and source_url == source
    assert held_to.sha256 is None and held_to.prefix == sha256(PREFIXED)[:8]  # the manifest's check, no more
    with pytest.warns(UserWarning, match=r"^tinynet.prefixed: only the first 8 hex digits of its sha256 were "
                                         r"checked \(32 bits"):
        assert mhub.pull("tinynet.prefixed", endpoint=server.url + "/mirror").read_bytes() == PREFIXED
    ref = json.loads((isolated_home / "refs" / "tinynet.prefixed.json").read_text())
    assert ref["hash"] == "prefix-8"  # the cache records the weak check it was, not a full one
    assert server.count("/source/p.pth") == 0


@pytest.mark.parametrize("fault", [Fault.endless(), Fault.drip(0.2)], ids=["endless", "drip"])
def test_a_bottomless_or_dripping_name_index_is_cut_short(server, tmp_path, monkeypatch, isolated_home, fault):
    """The index was read whole into memory (256 MiB and counting) and without a deadline."""
    monkeypatch.setenv("MHUB_TIMEOUT", "1")
    source = server.add("/source/p.pth", PREFIXED)
    server.add("/mirror/names/tinynet.prefixed.json", b"{}" * 1000, always=fault)
    write_registry(tmp_path / "registry", monkeypatch, entry("prefixed", [source], PREFIXED, full=False))
    start = time.monotonic()
    with pytest.warns(UserWarning, match="only the first 8 hex digits"):
        assert mhub.pull("tinynet.prefixed", endpoint=server.url + "/mirror").read_bytes() == PREFIXED
    assert time.monotonic() - start < 5  # MHUB_TIMEOUT bounds the index, then the source serves the file
    server.stop()
    assert server.sent("/mirror/names/tinynet.prefixed.json") < (1 << 20) + (32 << 20)  # 1 MiB + socket buffers
    assert server.count("/source/p.pth") == 1


def test_full_hashes_can_be_required(server, tmp_path, monkeypatch, isolated_home):
    """MHUB_REQUIRE_FULL_HASH=1 refuses prefix-only entries, cached or not, as pip's --require-hashes does."""
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("prefixed", [server.add("/p.pth", PREFIXED)], PREFIXED, full=False),
                   entry("full", [server.add("/full.bin", FULL)], FULL))
    with pytest.warns(UserWarning, match="only the first 8 hex digits"):
        mhub.pull("tinynet.prefixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, when the file was checked: not again from the cache
        mhub.pull("tinynet.prefixed")
    monkeypatch.setenv("MHUB_REQUIRE_FULL_HASH", "1")
    with pytest.raises(mhub.IntegrityError) as caught:
        mhub.pull("tinynet.prefixed")
    assert str(caught.value) == (f"tinynet.prefixed: MHUB_REQUIRE_FULL_HASH=1 refuses it: its manifest "
                                 f"({tmp_path / 'registry' / 'tiny.toml'}) gives only the sha256 prefix "
                                 f"{sha256(PREFIXED)[:8]} (32-bit check), not a full sha256")
    assert mhub.pull("tinynet.full").read_bytes() == FULL
    result = CliRunner().invoke(cli, ["pull", "tinynet.prefixed"])
    assert result.exit_code == 1 and "MHUB_REQUIRE_FULL_HASH=1 refuses it" in result.output
    assert server.count("/p.pth") == 1


def test_mirror_refuses_prefix_only_entries_when_full_hashes_are_required(server, tmp_path, monkeypatch,
                                                                          isolated_home):
    """`mhub mirror` used to fetch and publish a prefix-only entry despite MHUB_REQUIRE_FULL_HASH=1 (only `pull`
    checked it): it refuses it too, cached or not, before anything is fetched or written."""
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("prefixed", [server.add("/p.pth", PREFIXED)], PREFIXED, full=False),
                   entry("full", [server.add("/full.bin", FULL)], FULL))
    monkeypatch.setenv("MHUB_REQUIRE_FULL_HASH", "1")
    mirror = tmp_path / "mirror"
    result = CliRunner().invoke(cli, ["mirror", str(mirror), "tinynet.full", "tinynet.prefixed"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "tinynet.prefixed: MHUB_REQUIRE_FULL_HASH=1 refuses it" in result.output
    assert server.count("/p.pth") == 0 and not mirror.exists()

    monkeypatch.delenv("MHUB_REQUIRE_FULL_HASH")
    with pytest.warns(UserWarning, match="only the first 8 hex digits"):
        mhub.pull("tinynet.prefixed")  # cached now: the cache does not lift the requirement either
    monkeypatch.setenv("MHUB_REQUIRE_FULL_HASH", "1")
    result = CliRunner().invoke(cli, ["mirror", str(mirror), "tinynet.prefixed"])
    assert result.exit_code == 1 and "MHUB_REQUIRE_FULL_HASH=1 refuses it" in result.output, result.output
    assert server.count("/p.pth") == 1 and not mirror.exists()


def test_a_shared_folder_works_as_a_file_endpoint(server, tmp_path, monkeypatch, isolated_home):
    write_registry(tmp_path / "registry", monkeypatch, entry("full", [server.add("/full.bin", FULL)], FULL))
    CliRunner().invoke(cli, ["mirror", str(tmp_path / "shared"), "tinynet.full"])
    server.stop()
    monkeypatch.setenv("MHUB_HOME", str(tmp_path / "other-home"))
    monkeypatch.setenv("MHUB_ENDPOINT", (tmp_path / "shared").as_uri())
    assert mhub.pull("tinynet.full").read_bytes() == FULL
