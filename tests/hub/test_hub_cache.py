"""The cache: content addressing, names, `mhub cache ls | rm | verify | prune`, the default location."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hub_fixtures import entry, sha256, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
import mhub
from mhub.cli import cli
from mhub.hub import Cache, home

pytestmark = pytest.mark.usefixtures("tiny_plugin")
A = os.urandom(200_000)
B = os.urandom(300_000)


@pytest.fixture
def two_pulled(server, tmp_path, monkeypatch):
    """tinynet.a and tinynet.b pulled; tinynet.a2 is a second name for a's bytes."""
    url_a = server.add("/a.bin", A)
    url_b = server.add("/b.bin", B)
    write_registry(tmp_path / "registry", monkeypatch, entry("a", [url_a], A), entry("b", [url_b], B),
                   entry("a2", [url_a], A, filename="copy.bin"))
    return mhub.pull("tinynet.a"), mhub.pull("tinynet.b")


def cli_json(*args: str):
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_blobs_are_content_addressed_and_names_point_at_them(two_pulled, server, isolated_home):
    path_a, _ = two_pulled
    assert path_a == isolated_home / "names" / "tinynet.a" / "a.safetensors"  # the entry's format, not the URL's
    assert path_a.is_symlink() and path_a.resolve() == isolated_home / "blobs" / "sha256" / sha256(A)
    copy = mhub.pull("tinynet.a2")  # same bytes under another name: no second download
    assert copy.name == "copy.bin" and copy.resolve() == path_a.resolve()
    assert server.count("/a.bin") == 1


def test_cache_ls_lists_names_sizes_and_digests(two_pulled, isolated_home):
    code, data = cli_json("cache", "ls")
    assert code == 0 and data["root"] == str(isolated_home)
    listed = {e["name"]: e for e in data["entries"]}
    assert set(listed) == {"tinynet.a", "tinynet.b"}
    assert listed["tinynet.b"]["sha256"] == hashlib.sha256(B).hexdigest() and listed["tinynet.b"]["size"] == len(B)
    assert all(e["present"] and e["hash"] == "sha256" for e in listed.values())
    text = CliRunner().invoke(cli, ["cache", "ls"]).stdout
    assert "tinynet.a" in text and sha256(A)[:16] in text


def test_cache_verify_finds_one_flipped_byte(two_pulled, server, isolated_home):
    code, report = cli_json("cache", "verify")
    assert code == 0 and report["checked"] == 2 and report["corrupt"] == []
    blob = isolated_home / "blobs" / "sha256" / sha256(B)
    with open(blob, "r+b") as handle:  # flip one byte in the middle
        handle.seek(150_000)
        byte = handle.read(1)
        handle.seek(150_000)
        handle.write(bytes([byte[0] ^ 0x01]))
    flipped = hashlib.sha256(blob.read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["cache", "verify"])
    assert result.exit_code == 1
    assert f"CORRUPT {sha256(B)} (tinynet.b): content hashes to {flipped}" in result.stdout
    assert "1 corrupt" in result.stdout
    code, report = cli_json("cache", "verify", "--delete")
    assert code == 1 and [c["blob"] for c in report["corrupt"]] == [sha256(B)] and not blob.exists()
    assert mhub.pull("tinynet.b").read_bytes() == B  # fetched again
    assert server.count("/b.bin") == 2
    assert cli_json("cache", "verify")[0] == 0


def test_cache_rm_frees_blobs_no_other_name_uses(two_pulled, isolated_home):
    mhub.pull("tinynet.a2")
    code, result = cli_json("cache", "rm", "tinynet.a")
    assert code == 0 and result["removed"] == ["tinynet.a"] and result["freed"] == 0  # a2 still uses the blob
    assert (isolated_home / "blobs" / "sha256" / sha256(A)).exists()
    code, result = cli_json("cache", "rm", "tinynet")  # a bare model removes all its tags
    assert sorted(result["removed"]) == ["tinynet.a2", "tinynet.b"] and result["freed"] == len(A) + len(B)
    assert not list((isolated_home / "blobs" / "sha256").iterdir())
    missing = CliRunner().invoke(cli, ["cache", "rm", "tinynet.zzz"])
    assert missing.exit_code == 1 and "not in the cache" in missing.output


def test_cache_prune_removes_only_what_no_name_needs(two_pulled, isolated_home):
    orphan = isolated_home / "blobs" / "sha256" / ("0" * 64)
    orphan.write_bytes(b"x" * 10)
    leftover = isolated_home / "tmp" / ("1" * 64 + ".part")
    leftover.write_bytes(b"y" * 20)
    stale = isolated_home / "converted" / sha256(A) / "tests.tinytv@v0.json"  # an old converter version
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"converter": "tests.tinytv", "version": 0, "sha256": "2" * 64, "size": 1}))
    code, dry = cli_json("cache", "prune", "--dry-run")
    assert code == 0 and orphan.exists() and leftover.exists()
    assert set(dry["removed"]) == {str(orphan), str(leftover), str(stale)} and dry["freed"] >= 30
    code, done = cli_json("cache", "prune")
    assert set(done["removed"]) == set(dry["removed"])
    assert not orphan.exists() and not leftover.exists() and not stale.exists()
    assert mhub.pull("tinynet.a").read_bytes() == A and mhub.pull("tinynet.b").read_bytes() == B


def test_cache_prune_keeps_a_partial_download_in_progress(isolated_home):
    cache = Cache.current()
    part = cache.part_path("3" * 64)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"z")
    with cache.locked("3" * 64):
        assert cache.prune()["removed"] == []
    assert part.exists()


def test_default_home_is_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MHUB_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # platformdirs honours it on Linux
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert home() == tmp_path / "xdg" / "mhub"
    monkeypatch.setenv("MHUB_HOME", "~/somewhere")
    assert home() == Path("~/somewhere").expanduser()
