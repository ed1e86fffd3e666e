"""`mhub hash` equals coreutils' `sha256sum` (an independent implementation) on several files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import run_cli

GIB = 1 << 30


def sha256sum(*paths) -> dict[str, str]:
    out = subprocess.run(["sha256sum", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in out.splitlines()}


def mhub_hash(*paths) -> dict[str, tuple[str, int]]:
    out = run_cli("hash", *map(str, paths)).stdout
    rows = [line.split("  ", 2) for line in out.splitlines()]
    return {path: (digest, int(size)) for digest, size, path in rows}


pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")


def test_small_files_including_an_empty_one(tmp_path):
    files = {"empty": b"", "one": b"\x00", "abc": b"abc", "odd": bytes(range(256)) * 4099 + b"tail"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [tmp_path / name for name in files]
    ours, theirs = mhub_hash(*paths), sha256sum(*paths)
    for path in paths:
        assert ours[str(path)] == (theirs[str(path)], path.stat().st_size)
    # FIPS 180-2 test vectors, as a third opinion.
    assert ours[str(tmp_path / "abc")][0] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert ours[str(tmp_path / "empty")] == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0)


@pytest.mark.slow
def test_a_file_over_one_gib(tmp_path):
    path = tmp_path / "big.bin"
    pattern = bytes(range(251)) * 4177  # about 1 MiB, a period that does not divide the chunk size
    try:
        # Sparse: the holes read back as zeros at memory speed; real data at the start, middle and end.
        with open(path, "wb") as handle:
            handle.truncate(GIB + 1)
            for offset in (0, GIB // 2 - 7, GIB + 1 - len(pattern)):
                handle.seek(offset)
                handle.write(pattern)
        assert path.stat().st_size == GIB + 1
        ours, theirs = mhub_hash(path), sha256sum(path)
        assert ours[str(path)] == (theirs[str(path)], GIB + 1)
    finally:
        path.unlink(missing_ok=True)


def test_json_output_and_missing_file(tmp_path):
    (tmp_path / "a").write_bytes(b"hello\n")
    rows = json.loads(run_cli("hash", "--json", str(tmp_path / "a")).stdout)
    assert rows == [{"path": str(tmp_path / "a"), "sha256": sha256sum(tmp_path / "a")[str(tmp_path / "a")],
                     "size": 6}]
    missing = run_cli("hash", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not os.path.exists(tmp_path / "nope")
