"""A cache shared by a team (``MHUB_HOME`` on a common file system) must not let one user poison another.

Each test plants what a careless or hostile co-user could leave in the cache (a link out of it, a blob
changed after it was verified, a forged record) or races maintenance against a pull, and checks that
nothing outside the cache is touched and nothing unverified is used.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hub_fixtures import entry, pickle_bytes, safetensors_bytes, sha256, tiny_checkpoint, write_registry
from hub_fixtures import server_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)

import mhub
from mhub.cli import cli
from mhub.hub import Cache, client
from mhub.hub.convert import read_safetensors

pytestmark = pytest.mark.usefixtures("tiny_plugin")
A = os.urandom(200_000)
PRECIOUS = b"a file outside the cache that must survive\n"


@pytest.fixture
def pulled_a(server, tmp_path, monkeypatch):
    """tinynet.a pulled (its name path is returned); tinynet.b registered but not pulled."""
    write_registry(tmp_path / "registry", monkeypatch, entry("a", [server.add("/a.bin", A)], A),
                   entry("b", [server.add("/b.bin", A[::-1])], A[::-1]))
    return mhub.pull("tinynet.a")


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder outside the cache holding files a co-user would like deleted or overwritten."""
    folder = tmp_path / "victim"
    folder.mkdir()
    for name in ("0" * 64, "notes.part", "file"):
        (folder / name).write_bytes(PRECIOUS)
    return folder


def untouched(folder: Path) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ["0" * 64, "file", "notes.part"] and \
        all(p.read_bytes() == PRECIOUS for p in folder.iterdir())


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


# -- links out of the cache ---------------------------------------------------------------------------
def test_a_name_swapped_for_a_file_outside_is_flagged_and_relinked(pulled_a, isolated_home, victim):
    """The swapped name used to be returned by pull and to pass `cache verify`."""
    pulled_a.unlink()
    pulled_a.symlink_to(victim / "file")
    result = CliRunner().invoke(cli, ["cache", "verify"])
    assert result.exit_code == 1
    assert f"BAD NAME {pulled_a}: a symbolic link to {victim / 'file'}, not a blob of this cache" in result.output
    with pytest.warns(UserWarning, match=f"{pulled_a} did not lead to its blob"):
        path = mhub.pull("tinynet.a")
    assert path == pulled_a and path.resolve() == isolated_home / "blobs" / "sha256" / sha256(A)
    assert path.read_bytes() == A
    pulled_a.unlink()
    pulled_a.symlink_to(victim / "file")
    result = CliRunner().invoke(cli, ["cache", "verify", "--delete"])
    assert result.exit_code == 1 and not pulled_a.is_symlink()  # the link went, not what it pointed at
    assert untouched(victim)
    assert mhub.pull("tinynet.a").read_bytes() == A
    assert CliRunner().invoke(cli, ["cache", "verify"]).exit_code == 0


@pytest.mark.parametrize("folder,commands", [
    ("blobs/sha256", (["cache", "prune"], ["cache", "verify", "--delete"], ["cache", "rm", "tinynet.a"])),
    ("tmp", (["cache", "prune"],)),
    ("names", (["cache", "prune"], ["cache", "verify", "--delete"])),
])
def test_maintenance_never_follows_a_linked_folder_out_of_the_cache(pulled_a, isolated_home, victim, folder,
                                                                    commands):
    """`cache prune` and `cache verify --delete` used to delete the files behind such a link."""
    real = isolated_home / folder
    real.rename(real.with_name(real.name + ".moved"))
    real.symlink_to(victim)
    for command in commands:
        line = one_line_error(CliRunner().invoke(cli, command))
        assert line == (f"Error: {real} is a symbolic link (to {victim}); mhub never follows a link out of its "
                        "cache: remove the link"), command
    assert untouched(victim)
    with pytest.raises(mhub.IntegrityError, match="is a symbolic link"):  # nor does a pull write through it
        mhub.pull("tinynet.b")
    assert untouched(victim)


def test_links_inside_the_cache_are_removed_never_followed(pulled_a, isolated_home, victim):
    blobs = isolated_home / "blobs" / "sha256"
    (blobs / ("1" * 64)).symlink_to(victim / "file")
    (blobs / ("2" * 64)).symlink_to("/dev/zero")  # read, it would never end
    (isolated_home / "tmp" / "old.part").symlink_to(victim / "notes.part")
    (isolated_home / "names" / "tinynet.gone").symlink_to(victim)
    start = time.monotonic()
    code, report = invoke_json("cache", "verify")
    assert code == 1 and time.monotonic() - start < 5
    assert {(c["blob"], c["reason"]) for c in report["corrupt"]} == {
        ("1" * 64, f"a symbolic link to {victim / 'file'}, not a file"),
        ("2" * 64, "a symbolic link to /dev/zero, not a file")}
    code, pruned = invoke_json("cache", "prune")
    assert code == 0 and set(pruned["removed"]) == {
        str(blobs / ("1" * 64)), str(blobs / ("2" * 64)), str(isolated_home / "tmp" / "old.part"),
        str(isolated_home / "names" / "tinynet.gone")}
    assert untouched(victim)
    assert mhub.pull("tinynet.a").read_bytes() == A


def test_forged_records_never_become_paths_outside_the_cache(pulled_a, isolated_home, victim):
    """A ref or conversion record naming '../..' paths used to make `cache rm` delete them."""
    escape = os.path.relpath(victim / "file", isolated_home / "blobs" / "sha256")
    (isolated_home / "refs" / "forged.json").write_text(json.dumps(
        {"name": "tinynet./../../" + os.path.relpath(victim, isolated_home / "names"), "sha256": escape,
         "size": 1, "filename": "x"}))
    conversion = isolated_home / "converted" / sha256(A) / "tests.tinytv@v1.json"
    conversion.parent.mkdir(parents=True)
    conversion.write_text(json.dumps({"converter": "tests.tinytv", "version": 1, "sha256": escape, "size": 1}))
    code, removed = invoke_json("cache", "rm", "tinynet")
    assert code == 0 and removed["removed"] == ["tinynet.a"]  # the forged record is not a name of the cache
    assert untouched(victim)
    invoke_json("cache", "prune")
    assert untouched(victim)


def test_a_pull_never_writes_through_a_planted_partial_file(server, tmp_path, monkeypatch, isolated_home, victim):
    """A link planted at the partial download's name used to be resumed: the victim got the rest appended."""
    write_registry(tmp_path / "registry", monkeypatch, entry("a", [server.add("/a.bin", A)], A))
    part = isolated_home / "tmp" / f"{sha256(A)}.part"
    part.parent.mkdir(parents=True)
    part.symlink_to(victim / "file")
    assert mhub.pull("tinynet.a").read_bytes() == A
    assert [r.range for r in server.requests] == [None]  # nothing was resumed from the planted file
    assert untouched(victim)


def invoke_json(*args: str):
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


# -- blobs changed after verification ------------------------------------------------------------------
def count_hashing(monkeypatch) -> list[Path]:
    """Record every whole-file hash the cache computes (the slow path)."""
    from mhub.hub import cache as cache_module

    calls: list[Path] = []
    original = cache_module.sha256_file

    def counting(path):
        calls.append(Path(path))
        return original(path)

    monkeypatch.setattr(cache_module, "sha256_file", counting)
    return calls


def test_a_blob_changed_after_verification_is_hashed_again_and_never_loaded(server, tmp_path, monkeypatch,
                                                                            isolated_home):
    """`create(pretrained=True)` used to load a blob a co-user rewrote after it had been verified."""
    reference, state = tiny_checkpoint(num_classes=5)
    data = safetensors_bytes(state, tmp_path)
    write_registry(tmp_path / "registry", monkeypatch, entry("w", [server.add("/w", data)], data, num_classes=5))
    hashed = count_hashing(monkeypatch)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = reference(x)
        assert torch.equal(mhub.create("tinynet.w", pretrained=True).eval()(x), expected)
        assert torch.equal(mhub.create("tinynet.w", pretrained=True).eval()(x), expected)
    assert hashed == []  # verified while downloading, then trusted by its stamp: no re-hash on the fast path

    blob = isolated_home / "blobs" / "sha256" / sha256(data)
    before = blob.stat()
    with open(blob, "r+b") as handle:  # flip an exponent bit of the file's last float: same size, new value
        handle.seek(len(data) - 1)
        byte = handle.read(1)[0]
        handle.seek(len(data) - 1)
        handle.write(bytes([byte ^ 0x20]))
    os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))  # hiding the change from mtime is not enough
    with pytest.warns(UserWarning, match=f"cached blob {blob} changed after it was verified") as caught:
        model = mhub.create("tinynet.w", pretrained=True).eval()
    assert sum("changed after it was verified" in str(w.message) for w in caught) == 1  # said once per pull
    with torch.no_grad():
        assert torch.equal(model(x), expected)  # the good bytes, fetched again
    assert server.count("/w") == 2 and blob.read_bytes() == data
    assert hashed == [blob]  # once, under the lock (outside it only the stamp counts); the download is stamped
    hashed.clear()
    mhub.pull("tinynet.w")
    assert hashed == []


def test_stamps_in_a_folder_others_can_write_are_not_trusted(pulled_a, isolated_home, monkeypatch):
    if not hasattr(os, "getuid"):
        pytest.skip("ownership of the stamp folder is a POSIX notion")
    hashed = count_hashing(monkeypatch)
    stamps = isolated_home / "verified" / str(os.getuid())
    assert (stamps / sha256(A)).is_file() and stamps.stat().st_mode & 0o777 == 0o700
    mhub.pull("tinynet.a")
    assert hashed == []
    stamps.chmod(0o777)  # any co-user could have written these stamps
    mhub.pull("tinynet.a")
    assert len(hashed) == 1  # so the blob is hashed before use


def test_a_cache_without_a_stamp_folder_keeps_its_fast_path(pulled_a, isolated_home, monkeypatch, tmp_path):
    """A cache the user cannot write (a read-only team cache) gets stamps in the user's own state folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # platformdirs' state folder on Linux
    hashed = count_hashing(monkeypatch)
    shutil.rmtree(isolated_home / "verified")
    (isolated_home / "verified").write_text("not a folder")  # as unusable as a read-only one
    mhub.pull("tinynet.a")
    mhub.pull("tinynet.a")
    assert len(hashed) == 1  # hashed once, as nothing vouched for it yet; then stamped in the user's folder
    assert [p.name for p in (tmp_path / "state").rglob(sha256(A))] == [sha256(A)]


def test_a_cache_that_cannot_be_locked_still_serves_what_it_holds(pulled_a, isolated_home, monkeypatch):
    """Unstamped blobs are hashed under their lock; where no lock can be taken (a cache this user cannot
    write) the blob is hashed without it, and a file the cache lacks is one clear error, not a traceback."""
    hashed = count_hashing(monkeypatch)
    shutil.rmtree(isolated_home / "verified")  # no stamp vouches for the blob any more

    def refused(self, key, waiting=None):
        raise PermissionError(13, "Permission denied", str(self.root / "locks" / f"{key}.lock"))

    monkeypatch.setattr(Cache, "locked", refused)
    assert mhub.pull("tinynet.a").read_bytes() == A
    assert len(hashed) == 1
    with pytest.raises(mhub.MhubError, match=r"cannot lock tinynet\.b in the cache .* to fetch it \(Permission "
                                             r"denied\); set MHUB_HOME to a cache you can write"):
        mhub.pull("tinynet.b")


# -- prune racing pulls ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["full", "prefix", "conversion"])
def test_prune_during_a_pull_spares_the_blob_the_pull_is_recording(server, tmp_path, monkeypatch, isolated_home,
                                                                   kind):
    """`cache prune` used to delete a blob between its verification and its record, and the pull then
    returned a path whose blob was gone. The pull is paused at that moment while prune runs."""
    _, state = tiny_checkpoint(layout="tv" if kind == "conversion" else "ours")
    if kind == "conversion":
        data = pickle_bytes(state, tmp_path)
        fields = {"format": "torch-pickle", "converter": "tests.tinytv"}
    else:
        data, fields = safetensors_bytes(state, tmp_path), {}
    write_registry(tmp_path / "registry", monkeypatch, entry("w", [server.add("/w", data)], data,
                                                             full=kind != "prefix", **fields))
    blobs = isolated_home / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    orphan = blobs / ("3" * 64)  # unreferenced and older than the pull: prune still removes it
    orphan.write_bytes(b"old")
    time.sleep(0.05)

    paused, resume = threading.Event(), threading.Event()

    def pausing(original, when=lambda *args: True):
        def call(*args, **kwargs):
            if when(*args):
                paused.set()
                resume.wait(30)
            return original(*args, **kwargs)
        return call

    if kind == "conversion":  # paused between the converted blob and its record
        in_converted = lambda _, path, __: "converted" in path.parts  # noqa: E731
        monkeypatch.setattr(Cache, "write_json", pausing(Cache.write_json, in_converted))
    else:  # paused between the downloaded blob and its name's record
        monkeypatch.setattr(client, "_record", pausing(client._record))
    outcome: dict[str, object] = {}

    def pull():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the prefix-only entry's weak-check warning
                outcome["path"] = mhub.pull("tinynet.w")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=pull)
    thread.start()
    try:
        assert paused.wait(30), outcome
        present = {p.name for p in blobs.iterdir()}
        report = Cache.current().prune()
        assert report["removed"] == [str(orphan)]
        assert {p.name for p in blobs.iterdir()} == present - {orphan.name}
    finally:
        resume.set()
        thread.join(30)
    path = outcome["path"]
    assert isinstance(path, Path) and path.is_file(), outcome
    assert read_safetensors(path).keys() == tiny_checkpoint()[1].keys()
    assert Cache.current().prune()["removed"] == []  # and, recorded now, it is needed
