"""Many processes, one download; a pull killed with SIGKILL resumes and never leaves a partial final file."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import pytest
from hub_fixtures import child_env, entry, run_child, start_child, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
from loopback import wait_for

pytestmark = pytest.mark.usefixtures("tiny_plugin")


@pytest.mark.slow
def test_eight_processes_pulling_one_blob_download_it_once(server, tmp_path, monkeypatch, isolated_home):
    data = os.urandom(2 << 20)
    # 32 chunks of 64 KiB, 0.1 s apart: a ~3 s download, so every process arrives while it runs.
    url = server.add("/w/shared.bin", data, chunk_delay=0.1)
    registry = write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], data))
    env = child_env(MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(registry))
    children = [start_child("pull", "tinynet.x", "--json", env=env) for _ in range(8)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 8, [err for _, err in outputs]
    assert server.count("/w/shared.bin") == 1
    paths = [json.loads(out)[0]["path"] for out, _ in outputs]
    expected = hashlib.sha256(data).hexdigest()
    assert all(hashlib.sha256(open(path, "rb").read()).hexdigest() == expected for path in paths)
    # every process saw the download from the one that made it, or a cache hit after waiting on its lock
    assert sum(json.loads(out)[0]["downloaded_from"] == url for out, _ in outputs) == 1


@pytest.mark.slow
def test_pull_killed_mid_download_resumes_and_never_exposes_a_partial_file(server, tmp_path, monkeypatch,
                                                                           isolated_home):
    data = os.urandom(3 << 20)
    url = server.add("/w/big.bin", data, chunk_delay=0.05)  # 48 chunks: ~2.4 s
    registry = write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], data))
    env = child_env(MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(registry))
    digest = hashlib.sha256(data).hexdigest()
    part = isolated_home / "tmp" / f"{digest}.part"

    child = start_child("pull", "tinynet.x", "--quiet", env=env)
    assert wait_for(lambda: part.exists() and part.stat().st_size >= 512 * 1024, timeout=60)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    time.sleep(0.1)
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    assert not (isolated_home / "blobs" / "sha256" / digest).exists()
    assert not (isolated_home / "names" / "tinynet.x").exists()
    assert not (isolated_home / "refs").exists()

    result = run_child("pull", "tinynet.x", "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == digest
    assert server.requests[-1].range == (kept, None)  # resumed from the kept bytes
    assert not part.exists()
