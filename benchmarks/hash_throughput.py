"""`mhub hash` of a 1 GiB file against `openssl dgst -sha256` and coreutils `sha256sum`, in one run.

The file is written once into a temporary directory and read once to warm the page cache, so every tool
hashes from memory and the figures compare hashing, not the disk. Each command runs REPEATS times in a fresh
process (interpreter start-up included for mhub); the median wall time is reported, with the throughput and
its ratio to openssl's. `sha256_file` in-process (no interpreter start-up) is shown as well. Target:
`mhub hash` at least 0.9x openssl's throughput. All digests must agree.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1 << 30
REPEATS = 5
TARGET = 0.9


def write_file(path: Path) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for _ in range(GIB // len(block)):
            handle.write(block)


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, out


def median_run(argv: list[str], parse) -> tuple[float, str]:
    timed(argv)  # warm-up: page cache, interpreter files
    runs = [timed(argv) for _ in range(REPEATS)]
    digests = {parse(out) for _, out in runs}
    assert len(digests) == 1, digests
    return statistics.median(t for t, _ in runs), digests.pop()


def main() -> None:
    from mhub.hub.integrity import sha256_file

    tools = {
        "mhub hash": ([sys.executable, "-m", "mhub", "hash"], lambda out: out.split()[0]),
        "openssl dgst -sha256": (["openssl", "dgst", "-sha256"], lambda out: out.strip().split("= ")[-1]),
        "sha256sum": (["sha256sum"], lambda out: out.split()[0]),
    }
    missing = [argv[0] for argv, _ in tools.values() if shutil.which(argv[0]) is None]
    if missing:
        sys.exit(f"needs {', '.join(missing)} on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one-gib.bin"
        write_file(path)
        with open(path, "rb") as handle:  # warm the page cache
            while handle.read(1 << 24):
                pass
        results = {name: median_run([*argv, str(path)], parse) for name, (argv, parse) in tools.items()}
        in_process = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            digest, size = sha256_file(path)
            in_process.append(time.perf_counter() - start)
        results["sha256_file (in-process)"] = (statistics.median(in_process), digest)
        assert size == GIB

    digests = {d for _, d in results.values()}
    assert len(digests) == 1, f"the tools disagree: {results}"
    openssl = results["openssl dgst -sha256"][0]
    print(f"1 GiB from the page cache, median of {REPEATS} runs; sha256 {digests.pop()}")
    print(f"{'tool':28s} {'seconds':>8s} {'GiB/s':>7s} {'x openssl throughput':>21s}")
    for name, (seconds, _) in results.items():
        print(f"{name:28s} {seconds:8.3f} {1 / seconds:7.2f} {openssl / seconds:21.2f}")
    ratio = openssl / results["mhub hash"][0]
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"\nmhub hash = {ratio:.2f}x openssl's throughput ({verdict} the {TARGET}x target), "
          f"{results['sha256sum'][0] / results['mhub hash'][0]:.2f}x sha256sum's")


if __name__ == "__main__":
    main()
