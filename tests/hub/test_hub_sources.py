"""Source schemes: hf:// through the real huggingface_hub code path, file://, plugin-registered schemes."""

from __future__ import annotations

import os

import pytest
from hub_fixtures import FETCH_LOG, MEMORY, entry, sha256, write_registry
from hub_fixtures import (fast_retries_fixture, server_fixture, source_plugin_fixture,  # noqa: F401 (fixtures)
                          tiny_plugin_fixture)
from loopback import Fault

import mhub
from mhub import IntegrityError, NetworkError

pytestmark = pytest.mark.usefixtures("tiny_plugin", "fast_retries")
DATA = os.urandom(400_000)


@pytest.fixture
def hf_endpoint(server, monkeypatch, tmp_path):
    """Point huggingface_hub at the loopback server through ``HF_ENDPOINT``.

    huggingface_hub reads its telemetry switch at import, so it is also patched: with telemetry on it
    would ask its import-time endpoint for an "agent harness" list.
    """
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return server


@pytest.mark.parametrize("lfs", [False, True], ids=["plain", "lfs-redirect"])
def test_hf_source_goes_through_huggingface_hub(hf_endpoint, tmp_path, monkeypatch, isolated_home, lfs):
    url = hf_endpoint.add_hf_file("someorg/somerepo", "weights/model.safetensors", DATA, revision="v1.0", lfs=lfs)
    assert url == "hf://someorg/somerepo/weights/model.safetensors@v1.0"
    write_registry(tmp_path / "registry", monkeypatch, entry("hf", [url], DATA))
    path = mhub.pull("tinynet.hf")
    assert path.read_bytes() == DATA and path.resolve().name == sha256(DATA)
    head, get = hf_endpoint.requests
    assert (head.method, head.path) == ("HEAD", "/someorg/somerepo/resolve/v1.0/weights/model.safetensors")
    assert get.method == "GET" and get.path == (f"/lfs/{sha256(DATA)}" if lfs else head.path)
    user_agent = head.headers.get("user-agent", "")
    assert "hf_hub/" in user_agent and "mhub/" in user_agent  # huggingface_hub made the request for us
    assert not list((isolated_home / "tmp").iterdir())  # the staging folder is gone


def test_hf_missing_file_is_a_network_error_naming_the_url(hf_endpoint, tmp_path, monkeypatch, isolated_home):
    url = "hf://someorg/somerepo/nothing.safetensors"
    write_registry(tmp_path / "registry", monkeypatch, entry("hf", [url], DATA))
    with pytest.raises(NetworkError, match=url):
        mhub.pull("tinynet.hf")
    assert hf_endpoint.count("/someorg/somerepo/resolve/main/nothing.safetensors", "HEAD") == 1  # no retries


def test_hf_wrong_bytes_never_enter_the_cache(hf_endpoint, tmp_path, monkeypatch, isolated_home):
    url = hf_endpoint.add_hf_file("o/r", "m.safetensors", DATA[:-1] + b"!")
    write_registry(tmp_path / "registry", monkeypatch, entry("hf", [url], DATA))
    with pytest.raises(IntegrityError, match=f"{url}: sha256 mismatch: expected {sha256(DATA)}"):
        mhub.pull("tinynet.hf")
    assert not (isolated_home / "blobs").exists() and not list((isolated_home / "tmp").glob("*.part"))


def test_hf_server_error_is_retried(hf_endpoint, tmp_path, monkeypatch, isolated_home):
    url = hf_endpoint.add_hf_file("o/r", "m.safetensors", DATA, faults=[Fault.status(503)])
    write_registry(tmp_path / "registry", monkeypatch, entry("hf", [url], DATA))
    assert mhub.pull("tinynet.hf").read_bytes() == DATA


def test_file_source(tmp_path, monkeypatch, isolated_home):
    local = tmp_path / "some dir" / "w.bin"
    local.parent.mkdir()
    local.write_bytes(DATA)
    write_registry(tmp_path / "registry", monkeypatch, entry("f", [local.as_uri()], DATA))
    path = mhub.pull("tinynet.f")
    assert path.read_bytes() == DATA and local.read_bytes() == DATA  # copied, the original left alone
    missing = (tmp_path / "nope.bin").as_uri()
    write_registry(tmp_path / "registry", monkeypatch, entry("g", [missing], DATA + b"x"))
    with pytest.raises(NetworkError, match=f"{missing}: cannot read"):
        mhub.pull("tinynet.g")


@pytest.mark.usefixtures("source_plugin")
def test_plugin_scheme_streams_and_resumes_through_the_hub(tmp_path, monkeypatch, isolated_home):
    MEMORY["w"] = DATA
    write_registry(tmp_path / "registry", monkeypatch, entry("m", ["memory://w"], DATA))
    part = isolated_home / "tmp" / f"{sha256(DATA)}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:12_345])  # an interrupted earlier download
    assert mhub.pull("tinynet.m").read_bytes() == DATA
    assert FETCH_LOG == [("memory://w", 12_345)]


@pytest.mark.usefixtures("source_plugin")
def test_plugin_scheme_may_hand_over_a_staged_file(tmp_path, monkeypatch, isolated_home):
    MEMORY["w"] = DATA
    write_registry(tmp_path / "registry", monkeypatch, entry("s", ["staged://w"], DATA))
    assert mhub.pull("tinynet.s").read_bytes() == DATA
    MEMORY["bad"] = b"wrong"
    write_registry(tmp_path / "registry", monkeypatch, entry("t", ["staged://bad"], DATA[:-1]))
    with pytest.raises(IntegrityError, match="staged://bad: received 5 bytes"):
        mhub.pull("tinynet.t")


def test_unknown_scheme_names_the_known_ones(tmp_path, monkeypatch, isolated_home):
    write_registry(tmp_path / "registry", monkeypatch, entry("u", ["gopher://x/y"], DATA))
    with pytest.raises(NetworkError, match=r"gopher://x/y: no fetcher for scheme 'gopher://' \(known: file, hf, "):
        mhub.pull("tinynet.u")
