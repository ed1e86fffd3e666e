"""Object storage through fsspec: s3:// sources and mirrors against moto's S3 server on 127.0.0.1.

The server starts once per session (``s3`` fixture) and the AWS libraries find it through the usual
configuration only (``AWS_ENDPOINT_URL``, dummy ``AWS_*`` credentials, no metadata lookups); each test
uses its own buckets.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest
from click.testing import CliRunner
from hub_fixtures import (child_env, entry, pickle_bytes, run_child, sha256, start_child, tiny_checkpoint,
                          write_registry)
from hub_fixtures import fast_retries_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)

import mhub
from mhub import IntegrityError, NetworkError
from mhub.cli import cli
from mhub.hub import objectstore
from mhub.hub.sources import BODY_LIMIT, ResumeUnsupported

pytestmark = pytest.mark.usefixtures("tiny_plugin", "fast_retries")
DATA = os.urandom(1 << 20)

# `python -c` prologue: s3fs cannot be imported, as where the mhub[s3] extra is not installed.
WITHOUT_S3FS = """
import sys
class NoS3fs:
    def find_spec(self, name, path=None, target=None):
        if name == "s3fs" or name.startswith("s3fs."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoS3fs())
import hub_fixtures
hub_fixtures.main()
"""


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1, with the AWS_* variables pointing at it for the session."""
    from s3_loopback import S3Server

    with S3Server() as server, server.configured(str(tmp_path_factory.mktemp("aws"))):
        yield server


@pytest.fixture
def bucket(s3):
    """A fresh bucket name (moto keeps every bucket for the session)."""
    return f"mhub-{uuid.uuid4().hex[:12]}"


def test_pull_from_s3_reads_the_object_once_and_verifies_it(s3, bucket, tmp_path, monkeypatch, isolated_home):
    url = s3.put(bucket, "w/tiny.safetensors", DATA)
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
    pulled = mhub.hub.fetch("tinynet.x", progress=False)
    assert pulled.path.read_bytes() == DATA and pulled.url == url
    assert pulled.path.resolve() == isolated_home / "blobs" / "sha256" / sha256(DATA)
    assert [r.range for r in s3.log("GET", bucket, "w/tiny.safetensors")] == [None]  # one stream, no ranges
    assert mhub.pull("tinynet.x").read_bytes() == DATA  # a cache hit: the store is not asked again
    assert len(s3.log("GET", bucket, "w/tiny.safetensors")) == 1
    assert not list((isolated_home / "tmp").iterdir())


def test_a_tampered_object_is_refused_and_nothing_is_cached(s3, bucket, tmp_path, monkeypatch, isolated_home):
    tampered = bytearray(DATA)
    tampered[12345] ^= 1
    url = s3.put(bucket, "w/tiny.safetensors", bytes(tampered))
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
    with pytest.raises(IntegrityError, match=f"^{url}: sha256 mismatch: expected {sha256(DATA)}"):
        mhub.pull("tinynet.x")
    assert not (isolated_home / "blobs").exists() and not (isolated_home / "refs").exists()
    assert not list((isolated_home / "tmp").glob("*.part"))


def test_an_interrupted_read_resumes_at_the_bytes_already_held(s3, bucket, tmp_path, monkeypatch, isolated_home):
    url = s3.put(bucket, "w/tiny.safetensors", DATA)
    s3.cut(bucket, "w/tiny.safetensors", after=300_000)  # the first GET drops its connection there
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
    assert mhub.pull("tinynet.x").read_bytes() == DATA
    assert [r.range for r in s3.log("GET", bucket, "w/tiny.safetensors")] == [None, "bytes=300000-"]


def test_a_missing_object_is_final_and_the_next_source_serves(s3, bucket, tmp_path, monkeypatch, isolated_home):
    missing = s3.put(bucket, "w/other.bin", b"something else").replace("other.bin", "missing.bin")
    local = tmp_path / "w.bin"
    local.write_bytes(DATA)
    write_registry(tmp_path / "registry", monkeypatch, entry("x", [missing], DATA),
                   entry("y", [missing, local.as_uri()], DATA))
    with pytest.raises(NetworkError, match=f"^{missing}: not found"):
        mhub.pull("tinynet.x")
    assert mhub.pull("tinynet.y").read_bytes() == DATA
    assert len(s3.log("GET", bucket, "w/missing.bin")) == 2  # once per pull: not found is not retried


def test_mirror_to_s3_serves_a_fresh_cache_and_the_model_is_reproduced(s3, bucket, tmp_path, monkeypatch,
                                                                       isolated_home):
    import torch

    reference, state = tiny_checkpoint(seed=3, layout="tv")
    data = pickle_bytes(state, tmp_path)
    source = s3.put(bucket, "upstream/tiny.pth", data)
    write_registry(tmp_path / "registry", monkeypatch,
                   entry("tv", [source], data, num_classes=5, format="torch-pickle", converter="tests.tinytv"))
    mirror = f"s3://{bucket}-mirror/mhub"
    s3.filesystem().mkdir(f"{bucket}-mirror")
    blob_key = f"mhub/blobs/sha256/{sha256(data)}"
    for _ in range(2):  # the second run finds the blob in place and only refreshes the name index
        result = CliRunner().invoke(cli, ["mirror", mirror, "tinynet.tv", "--json"])
        assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["sha256"] == sha256(data)
    assert s3.get(f"{bucket}-mirror", blob_key) == data
    assert json.loads(s3.get(f"{bucket}-mirror", "mhub/names/tinynet.tv.json"))["sha256"] == sha256(data)
    assert len(s3.log("PUT", f"{bucket}-mirror", blob_key)) == 1
    assert len(s3.log("PUT", f"{bucket}-mirror", "mhub/names/tinynet.tv.json")) == 2

    s3.delete(bucket, "upstream/tiny.pth")  # from here on only the mirror has the file
    s3.clear_log()
    monkeypatch.setenv("MHUB_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.setenv("MHUB_ENDPOINT", mirror)
    x = torch.randn(2, 3, 24, 24)
    model = mhub.create("tinynet.tv", pretrained=True).eval()
    assert torch.equal(model(x), reference(x))
    assert len(s3.log("GET", f"{bucket}-mirror", blob_key)) == 1 and not s3.log("GET", bucket, "upstream/tiny.pth")


def test_an_s3_mirror_name_index_locates_a_prefix_only_file(s3, bucket, tmp_path, monkeypatch, isolated_home):
    source = s3.put(bucket, "upstream/p.pth", DATA)
    write_registry(tmp_path / "registry", monkeypatch, entry("p", [source], DATA, full=False))
    mirror = f"s3://{bucket}/mirror"
    with pytest.warns(UserWarning, match="only the first 8 hex digits"):
        assert CliRunner().invoke(cli, ["mirror", mirror, "tinynet.p"]).exit_code == 0
    s3.delete(bucket, "upstream/p.pth")
    s3.clear_log()
    monkeypatch.setenv("MHUB_HOME", str(tmp_path / "fresh-home"))
    with pytest.warns(UserWarning, match="only the first 8 hex digits"):  # still held to the prefix alone
        assert mhub.pull("tinynet.p", endpoint=mirror).read_bytes() == DATA
    assert [(r.method, r.key) for r in s3.requests] == [("GET", "mirror/names/tinynet.p.json"),
                                                         ("GET", f"mirror/blobs/sha256/{sha256(DATA)}")]


def test_mirror_refuses_a_target_it_cannot_write(tmp_path):
    result = CliRunner().invoke(cli, ["mirror", "https://example.invalid/mhub"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: cannot write a mirror to https://example.invalid/mhub: write it to a "
                                     "folder that a web server serves, or to object storage (s3://bucket/prefix)")
    result = CliRunner().invoke(cli, ["mirror", "nosuch://bucket/mhub"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: nosuch://bucket/mhub: no storage library knows nosuch:// (fsspec's "
                                     "protocols: s3, gs, az, ...)")


@pytest.mark.slow
def test_eight_processes_pulling_from_s3_read_the_object_once(s3, bucket, tmp_path, monkeypatch, isolated_home):
    data = os.urandom(2 << 20)
    url = s3.put(bucket, "w/shared.bin", data)
    s3.slow(bucket, "w/shared.bin", 0.1)  # 32 pieces of 64 KiB: a ~3 s read, so every process arrives during it
    registry = write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], data))
    env = child_env(MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(registry))
    children = [start_child("pull", "tinynet.x", "--json", env=env) for _ in range(8)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 8, [err for _, err in outputs]
    assert len(s3.log("GET", bucket, "w/shared.bin")) == 1
    records = [json.loads(out)[0] for out, _ in outputs]
    assert sum(record["downloaded_from"] == url for record in records) == 1
    digest = hashlib.sha256(data).hexdigest()
    assert all(hashlib.sha256(open(r["path"], "rb").read()).hexdigest() == digest for r in records)


def test_without_the_extra_an_s3_source_fails_with_one_line_naming_it(tmp_path, monkeypatch, isolated_home):
    url = "s3://weights/w/tiny.safetensors"
    registry = write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
    result = subprocess.run([sys.executable, "-c", WITHOUT_S3FS, "pull", "tinynet.x"], capture_output=True,
                            text=True, timeout=120,
                            env=child_env(MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(registry)))
    assert result.returncode == 1
    assert result.stderr.strip() == (f'Error: {url}: s3:// needs the s3 extra, which is not installed: '
                                     'pip install "mhub[s3]"')


def test_missing_credentials_are_a_final_error_naming_where_they_come_from(s3, bucket, tmp_path, monkeypatch,
                                                                             isolated_home):
    url = s3.put(bucket, "w/tiny.safetensors", DATA)
    registry = write_registry(tmp_path / "registry", monkeypatch, entry("x", [url], DATA))
    env = child_env(MHUB_HOME=str(isolated_home), MHUB_REGISTRY=str(registry))
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    result = run_child("pull", "tinynet.x", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Error: {url}: Unable to locate credentials: configure the storage library's "
                                     "credentials (for s3://: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
                                     "an instance role)")
    assert not s3.log("GET", bucket, "w/tiny.safetensors")  # refused before any request, and not retried


# -- the fetcher itself: any fsspec protocol, and the URLs it refuses -------------------------------------
def test_any_fsspec_protocol_streams_from_an_offset():
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe_file(f"/mhub-tests/{os.getpid()}.bin", DATA)
    url = f"memory:///mhub-tests/{os.getpid()}.bin"
    assert b"".join(objectstore.fetch_object(url)) == DATA
    assert b"".join(objectstore.fetch_object(url, offset=654_321)) == DATA[654_321:]
    with pytest.raises(ResumeUnsupported):
        next(objectstore.fetch_object(url, offset=len(DATA)))
    token = BODY_LIMIT.set((len(DATA) - 1, "the entry's size"))
    try:
        with pytest.raises(IntegrityError, match=f"announces {len(DATA)} bytes, more than the {len(DATA) - 1}"):
            next(objectstore.fetch_object(url))
    finally:
        BODY_LIMIT.reset(token)
    memory.rm_file(f"/mhub-tests/{os.getpid()}.bin")


@pytest.mark.parametrize(("url", "message"), [
    ("simplecache::s3://b/k", "chained fsspec URLs"),
    ("s3://key:secret@bucket/k", "may not carry a password"),
    ("filecache://b/k", "an fsspec wrapper, not storage"),
])
def test_urls_that_would_configure_the_storage_are_refused(url, message):
    with pytest.raises(NetworkError, match=message):
        next(objectstore.fetch_object(url))
