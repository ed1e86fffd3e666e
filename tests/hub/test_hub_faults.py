"""Faults while pulling, one test each, against a loopback server; the cache stays intact after every one.

"Intact" is checked independently of the hub's code: every blob's bytes hash (hashlib) to its file name,
every name resolves to a blob, and no partial download is left under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest
from conftest import fill_up
from hub_fixtures import child_env, entry, pickle_bytes, run_child, sha256, tiny_checkpoint, write_registry
from hub_fixtures import fast_retries_fixture, server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
from loopback import Fault, LoopbackServer

import mhub
from mhub import IntegrityError, NetworkError, OfflineError
from mhub.hub import NoSpaceError

pytestmark = pytest.mark.usefixtures("tiny_plugin", "fast_retries")
DATA = os.urandom(1_500_000)


def assert_cache_intact(home: Path) -> None:
    blobs = home / "blobs" / "sha256"
    for blob in blobs.glob("*"):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, f"corrupt blob {blob}"
    for link in (home / "names").rglob("*"):
        if not link.is_dir():
            assert link.exists() and link.resolve().parent == blobs.resolve(), f"dangling or partial name {link}"
    for ref in (home / "refs").glob("*.json"):
        assert (blobs / json.loads(ref.read_text())["sha256"]).is_file()


def nothing_cached(home: Path, *, partial_kept: bool = False) -> bool:
    """No blob, name, ref or (unless ``partial_kept``: a resumable) partial download under ``home``."""
    names = [p for p in (home / "names").rglob("*") if not p.is_dir()]
    partial = [] if partial_kept else list((home / "tmp").glob("*.part"))
    return not (list((home / "blobs" / "sha256").glob("*")) or partial or list((home / "refs").glob("*.json"))
                or names)


def setup(server, tmp_path, monkeypatch, data=DATA, faults=(), **fields) -> str:
    url = server.add("/w/tiny.bin", data, faults=faults)
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], data, **fields))
    return url


def test_wrong_bytes_are_an_integrity_error_and_nothing_is_cached(server, tmp_path, monkeypatch, isolated_home):
    url = setup(server, tmp_path, monkeypatch, faults=[Fault.corrupt(offset=777)])
    corrupted = bytearray(DATA)
    corrupted[777] ^= 0xFF
    with pytest.raises(IntegrityError) as caught:
        mhub.pull("tinynet.x")
    message = str(caught.value)
    assert url in message and sha256(DATA) in message and hashlib.sha256(corrupted).hexdigest() in message
    assert server.count("/w/tiny.bin") == 1  # a mismatch is not retried against the same bytes
    assert nothing_cached(isolated_home)
    assert_cache_intact(isolated_home)
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA  # the server is healthy again
    assert_cache_intact(isolated_home)


def test_truncated_body_is_rejected(server, tmp_path, monkeypatch, isolated_home):
    url = setup(server, tmp_path, monkeypatch, faults=[Fault.truncate(len(DATA) // 3)])
    with pytest.raises(IntegrityError, match=f"{url}: received {len(DATA) // 3} bytes, expected {len(DATA)}"):
        mhub.pull("tinynet.x")
    assert nothing_cached(isolated_home)
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    assert_cache_intact(isolated_home)


def test_truncated_body_without_a_known_size_fails_the_digest(server, tmp_path, monkeypatch, isolated_home):
    url = server.add("/w/tiny.bin", DATA, faults=[Fault.truncate(1000)])
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA, size=False))
    with pytest.raises(IntegrityError, match=f"expected {sha256(DATA)}, got {sha256(DATA[:1000])}"):
        mhub.pull("tinynet.x")
    assert nothing_cached(isolated_home)


def test_dropped_connection_resumes_with_range(server, tmp_path, monkeypatch, isolated_home):
    setup(server, tmp_path, monkeypatch, faults=[Fault.drop(after=1_234_567)])
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    first, second = server.requests
    assert first.range is None and first.fault == "drop"
    assert second.range == (1_234_567, None)  # only the rest was asked for
    assert_cache_intact(isolated_home)
    assert not list((isolated_home / "tmp").glob("*.part"))


def test_500_500_200_succeeds_after_retries(server, tmp_path, monkeypatch, isolated_home):
    setup(server, tmp_path, monkeypatch, faults=[Fault.status(500), Fault.status(503)])
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    assert [r.fault for r in server.requests] == ["status", "status", None]
    assert_cache_intact(isolated_home)


def test_too_many_5xx_give_up_with_the_url(server, tmp_path, monkeypatch, isolated_home):
    url = setup(server, tmp_path, monkeypatch, faults=[Fault.status(502)] * 10)
    with pytest.raises(NetworkError, match=f"{url}: HTTP 502.*gave up after 4 attempts"):
        mhub.pull("tinynet.x")
    assert server.count("/w/tiny.bin") == 4  # MHUB_RETRIES=3: one try and three retries
    assert nothing_cached(isolated_home)


def test_404_is_a_clear_error_without_retries(server, tmp_path, monkeypatch, isolated_home):
    url = setup(server, tmp_path, monkeypatch, faults=[Fault.status(404)])
    with pytest.raises(NetworkError) as caught:
        mhub.pull("tinynet.x")
    assert str(caught.value) == f"{url}: HTTP 404 Not Found"
    assert server.count("/w/tiny.bin") == 1
    assert nothing_cached(isolated_home)


def test_429_waits_for_retry_after(server, tmp_path, monkeypatch, isolated_home):
    setup(server, tmp_path, monkeypatch, faults=[Fault.status(429, {"Retry-After": "1"})])
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    first, second = server.requests
    assert second.time - first.time >= 0.95  # the backoff alone would be ~0.01 s


def test_stalled_server_times_out_and_is_retried(server, tmp_path, monkeypatch, isolated_home):
    monkeypatch.setenv("MHUB_TIMEOUT", "0.5")
    setup(server, tmp_path, monkeypatch, faults=[Fault.stall(30)])
    start = time.monotonic()
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    assert time.monotonic() - start < 10
    assert [r.fault for r in server.requests] == ["stall", None]
    assert_cache_intact(isolated_home)


def test_stall_mid_body_resumes_where_the_bytes_stopped(server, tmp_path, monkeypatch, isolated_home):
    monkeypatch.setenv("MHUB_TIMEOUT", "0.5")
    setup(server, tmp_path, monkeypatch, faults=[Fault.stall(30, after=1_100_000)])
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    first, second = server.requests
    assert first.fault == "stall" and second.range is not None and second.range[0] >= 1 << 20


def test_redirect_is_followed(server, tmp_path, monkeypatch, isolated_home):
    server.add("/elsewhere/blob", DATA)
    setup(server, tmp_path, monkeypatch, faults=[Fault.redirect("/elsewhere/blob", 302)])
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    assert [r.path for r in server.requests] == ["/w/tiny.bin", "/elsewhere/blob"]


def test_server_ignoring_range_makes_the_download_start_over(tmp_path, monkeypatch, isolated_home):
    with LoopbackServer(range_support=False) as plain:
        setup(plain, tmp_path, monkeypatch, faults=[Fault.drop(after=1_200_000)])
        assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
        ranges = [r.range for r in plain.requests]
    assert ranges[0] is None and ranges[1] == (1_200_000, None) and ranges[-1] is None


def test_a_bad_kept_partial_file_is_discarded_once(server, tmp_path, monkeypatch, isolated_home):
    setup(server, tmp_path, monkeypatch)
    part = isolated_home / "tmp" / f"{sha256(DATA)}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 5000)  # not the file's first bytes
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    assert [r.range for r in server.requests] == [(5000, None), None]
    assert_cache_intact(isolated_home)


def test_later_sources_are_tried_when_one_fails(server, tmp_path, monkeypatch, isolated_home):
    good = server.add("/mirror2/tiny.bin", DATA)
    bad = server.add("/gone/tiny.bin", DATA, faults=[Fault.status(404)])
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [bad, good], DATA))
    assert Path(mhub.pull("tinynet.x")).read_bytes() == DATA
    assert [r.path for r in server.requests] == ["/gone/tiny.bin", "/mirror2/tiny.bin"]


def test_prefix_only_entry_is_checked_and_its_full_digest_recorded(server, tmp_path, monkeypatch, isolated_home):
    url = server.add("/w/tiny.bin", DATA, faults=[Fault.corrupt(10)])
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA, full=False))
    with pytest.raises(IntegrityError, match=f"starting with {sha256(DATA)[:8]}"):
        mhub.pull("tinynet.x")
    with pytest.warns(UserWarning, match="only the first 8 hex digits of its sha256 were checked"):
        path = mhub.pull("tinynet.x")
    assert path.resolve().name == sha256(DATA)
    ref = json.loads((isolated_home / "refs" / "tinynet.x.json").read_text())
    assert ref["sha256"] == sha256(DATA) and ref["hash"] == "prefix-8"
    mhub.pull("tinynet.x")
    assert server.count("/w/tiny.bin") == 2  # the recorded digest makes the third pull a cache hit


# -- bounded effort: attempts, speed, size --------------------------------------------------------------
def request_gaps(server, path: str) -> list[float]:
    times = [r.time for r in server.requests if r.path == path]
    return [later - earlier for earlier, later in zip(times, times[1:])]


def test_partial_progress_does_not_reset_the_retry_count(server, tmp_path, monkeypatch, isolated_home):
    """Every answer delivers 100 kB more, then drops: it used to be retried as long as it progressed."""
    monkeypatch.setenv("MHUB_RETRIES", "2")
    monkeypatch.setenv("MHUB_BACKOFF", "0.1")
    url = server.add("/w/tiny.bin", DATA, always=Fault.drop(after=100_000))
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
    start = time.monotonic()
    with pytest.raises(NetworkError, match=f"^{url}: connection lost mid-stream: .*gave up after 3 attempts"):
        mhub.pull("tinynet.x")
    assert time.monotonic() - start < 5
    assert server.count("/w/tiny.bin") == 3  # MHUB_RETRIES=2: one try, two retries, progress or not
    assert [r.range for r in server.requests] == [None, (100_000, None), (200_000, None)]  # still resumed
    gaps = request_gaps(server, "/w/tiny.bin")
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # backoff (jitter: half to all of 0.1 s, then of 0.2 s)
    assert nothing_cached(isolated_home, partial_kept=True)  # the 300 kB received wait for a later resume


def test_a_server_without_range_dropping_every_answer_is_given_up(tmp_path, monkeypatch, isolated_home):
    """No Range support and every answer cut half-way: ~290 requests in 8 s with MHUB_RETRIES=2 before."""
    monkeypatch.setenv("MHUB_RETRIES", "2")
    with LoopbackServer(range_support=False) as plain:
        url = plain.add("/w/tiny.bin", DATA, always=Fault.drop(after=len(DATA) // 2))
        write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
        with pytest.raises(NetworkError, match="gave up after 4 attempts"):
            mhub.pull("tinynet.x")
        ranges = [r.range for r in plain.requests]
    # the one range request shows the server cannot resume; from then on only whole-file attempts
    assert ranges == [None, (len(DATA) // 2, None), None, None]
    assert nothing_cached(isolated_home, partial_kept=True)


def test_a_content_length_larger_than_the_body_is_refused_when_the_size_is_known(server, tmp_path, monkeypatch,
                                                                                 isolated_home):
    url = setup(server, tmp_path, monkeypatch)
    server.add("/w/tiny.bin", DATA, always=Fault.overstate(1000))
    with pytest.raises(IntegrityError) as caught:
        mhub.pull("tinynet.x")
    assert str(caught.value) == (f"{url}: the server announces {len(DATA) + 1000} bytes, more than the "
                                 f"{len(DATA)} allowed (the entry's size); nothing was cached")
    assert server.count("/w/tiny.bin") == 1  # wrong bytes are not asked for again
    assert nothing_cached(isolated_home)


def test_a_content_length_larger_than_the_body_ends_in_a_verified_file_without_a_size(server, tmp_path,
                                                                                      monkeypatch, isolated_home):
    url = server.add("/w/tiny.bin", DATA, always=Fault.overstate(1000))
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA, size=False))
    assert mhub.pull("tinynet.x").read_bytes() == DATA
    # the whole body came with the first answer; the range after it is unsatisfiable (416), and the
    # bytes held then match the sha256: no third request
    assert [r.range for r in server.requests] == [None, (len(DATA), None)]
    assert_cache_intact(isolated_home)


def test_a_slow_drip_is_cut_by_the_minimum_speed(server, tmp_path, monkeypatch, isolated_home):
    """One byte every 0.25 s never trips the read timeout; it used to keep a pull alive forever."""
    monkeypatch.setenv("MHUB_TIMEOUT", "0.6")  # the speed check's window
    monkeypatch.setenv("MHUB_RETRIES", "1")
    url = setup(server, tmp_path, monkeypatch)
    server.add("/w/tiny.bin", DATA, always=Fault.drip(0.25))
    start = time.monotonic()
    result = run_child("pull", "tinynet.x", "--quiet", env=child_env(
        MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(tmp_path / "registry"), MHUB_TIMEOUT="0.6",
        MHUB_RETRIES="1", MHUB_BACKOFF="0.01"), timeout=30)
    assert time.monotonic() - start < 10
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(rf"Error: {re.escape(url)}: too slow: \d+ bytes/s over 0\.\d s, below MHUB_MIN_SPEED=1024 "
                        r"\(gave up after 2 attempts\)", lines[0]), lines[0]
    assert server.count("/w/tiny.bin") == 2
    assert nothing_cached(isolated_home, partial_kept=True)
    monkeypatch.setenv("MHUB_MIN_SPEED", "0")  # the check can be turned off: then only the size bounds it
    monkeypatch.setenv("MHUB_RETRIES", "0")
    server.add("/w/tiny.bin", DATA[:3], always=Fault.drip(0.25))
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA[:3]))
    assert mhub.pull("tinynet.x").read_bytes() == DATA[:3]


@pytest.mark.parametrize("announced", [None, 10 ** 12])
def test_an_endless_body_stops_at_the_size_ceiling(server, tmp_path, monkeypatch, isolated_home, announced):
    """An entry without ``size`` used to take 256 MiB for a 0.3 MB file; the ceiling is MHUB_MAX_SIZE."""
    monkeypatch.setenv("MHUB_MAX_SIZE", "2M")
    url = server.add("/w/tiny.bin", DATA, always=Fault.endless(content_length=announced))
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA, size=False))
    start = time.monotonic()
    with pytest.raises(IntegrityError) as caught:
        mhub.pull("tinynet.x")
    if announced is None:  # no length announced: read up to the ceiling, then stop
        assert str(caught.value) == (f"{url}: sent more than {2 << 20} bytes (MHUB_MAX_SIZE, as the entry gives "
                                     "no size); stopped reading, nothing was cached")
    else:  # an announced length over the ceiling: refused before reading
        assert str(caught.value) == (f"{url}: the server announces {announced} bytes, more than the {2 << 20} "
                                     "allowed (MHUB_MAX_SIZE, as the entry gives no size); nothing was cached")
    assert time.monotonic() - start < 5
    assert server.count("/w/tiny.bin") == 1
    server.stop()  # (the server writes into socket buffers until the client hangs up: count after)
    assert server.sent("/w/tiny.bin") < (2 << 20) + (32 << 20)  # the ceiling plus what sockets buffer
    assert nothing_cached(isolated_home)


def test_size_settings_must_be_numbers(server, tmp_path, monkeypatch, isolated_home):
    setup(server, tmp_path, monkeypatch)
    monkeypatch.setenv("MHUB_MAX_SIZE", "lots")
    with pytest.raises(mhub.MhubError, match=r"^MHUB_MAX_SIZE='lots' is not a size in bytes \(e.g. 2000000, 512M"):
        mhub.pull("tinynet.x")
    monkeypatch.setenv("MHUB_MAX_SIZE", "16G")
    monkeypatch.setenv("MHUB_MIN_SPEED", "-1")
    with pytest.raises(mhub.MhubError, match="^MHUB_MIN_SPEED='-1' is not a non-negative number$"):
        mhub.pull("tinynet.x")
    assert server.requests == []


# -- no space left on device -------------------------------------------------------------------------
def test_disk_full_mid_download_is_one_clear_error_and_leaves_nothing(server, tmp_path, monkeypatch, tiny_disk):
    data = os.urandom(3 << 20)  # three times the disk
    url = server.add("/w/big.bin", data)
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], data, size=False))  # no size: no preflight
    home = tiny_disk / "home"
    monkeypatch.setenv("MHUB_HOME", str(home))
    with pytest.raises(NoSpaceError, match="^no space left on device writing "):
        mhub.pull("tinynet.x")
    assert server.count("/w/big.bin") == 1
    assert nothing_cached(home)
    assert_cache_intact(home)
    result = run_child("pull", "tinynet.x", "--quiet",
                       env=child_env(MHUB_HOME=str(home), MHUB_REGISTRY=str(tmp_path / "registry")))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no space left on device writing"), result.stderr
    assert nothing_cached(home)


def test_disk_too_small_for_a_known_size_fails_before_downloading(server, tmp_path, monkeypatch, tiny_disk):
    data = os.urandom(2 << 20)
    url = server.add("/w/big.bin", data)
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], data))
    monkeypatch.setenv("MHUB_HOME", str(tiny_disk / "home"))
    with pytest.raises(NoSpaceError, match=f"{len(data)} bytes needed"):
        mhub.pull("tinynet.x")
    assert server.count("/w/big.bin") == 0


def test_disk_full_while_converting_to_safetensors_is_no_space_and_leaves_nothing(server, tmp_path, monkeypatch,
                                                                                  tiny_disk):
    """safetensors reports ENOSPC as its own SafetensorError, which used to escape as such."""
    _, state = tiny_checkpoint(layout="tv")
    data = pickle_bytes(state, tmp_path)
    url = server.add("/w/tiny.pth", data)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("x", [url], data, format="torch-pickle", converter="tests.tinytv"))
    home = tiny_disk / "home"
    monkeypatch.setenv("MHUB_HOME", str(home))
    mhub.hub.fetch("tinynet.x", convert=False)  # the source fits; then the disk fills up
    fill_up(tiny_disk)
    with pytest.raises(NoSpaceError, match="^no space left on device writing .*MHUB_HOME at a larger disk"):
        mhub.pull("tinynet.x")
    assert [p.name for p in (home / "blobs" / "sha256").iterdir()] == [sha256(data)]  # no converted blob
    assert not (home / "converted").exists() and list((home / "tmp").iterdir()) == []  # nor a partial one
    assert_cache_intact(home)


# -- offline ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["MHUB_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_without_the_blob_names_what_is_missing(server, tmp_path, monkeypatch, isolated_home, variable):
    setup(server, tmp_path, monkeypatch)
    monkeypatch.setenv(variable, "1")
    with pytest.raises(OfflineError) as caught:
        mhub.pull("tinynet.x")
    message = str(caught.value)
    assert f"{variable}=1" in message and "tinynet.x" in message and sha256(DATA) in message
    assert server.requests == []


def test_offline_with_the_blob_cached_needs_no_network(server, tmp_path, monkeypatch, isolated_home):
    setup(server, tmp_path, monkeypatch)
    online = mhub.pull("tinynet.x")
    server.stop()
    monkeypatch.setenv("MHUB_OFFLINE", "1")
    assert mhub.pull("tinynet.x") == online
    assert online.read_bytes() == DATA
    assert len(server.requests) == 1
