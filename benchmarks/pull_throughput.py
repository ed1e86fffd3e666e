"""Pull throughput over loopback: `mhub.pull` (sha256 verified) vs `curl -o` vs a bare requests stream,
and from S3 (moto's server on 127.0.0.1) vs s3fs's own download.

One file of random bytes (1 GiB by default) is served from disk by the threaded loopback server of the
test suite (sendfile). Each client runs in its own fresh process, REPEATS times, into a fresh
destination; the median wall time of the whole process is compared. mhub's run includes everything a
user gets: hashing while the bytes arrive, the lock, the atomic rename, the name link. A variant with
the hash computed inline (no worker thread) shows what the second thread buys.

Targets: mhub no slower than curl, and at most 1.3x the bare requests stream. A last row times sha256
alone over the same bytes: a download verified as it arrives cannot finish faster than that, so where
the CPU hashes slower than loopback moves bytes, the targets are out of reach by construction.

The S3 rows (when s3fs and moto are installed: the dev extra) serve the same bytes as an object of
moto's S3 server on 127.0.0.1: `mhub.pull` of an `s3://` source against s3fs's `get_file` to a file
(no hash), target at most 1.2x. Both read one stream (s3fs with ``max_concurrency=1``): moto reads the
whole object into memory for every request, so s3fs's default of 10 concurrent ranged reads would
measure moto (and take 10x the memory); against a real object store those ranges can be faster.
Both import s3fs, and mhub builds its registry, before the clock; the clock includes creating the
client.

    python benchmarks/pull_throughput.py [--size-mib 1024] [--repeats 3] [--no-s3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from loopback import LoopbackServer  # noqa: E402

CHUNK = 1 << 20

BARE = """
import sys, time, requests
url, out = sys.argv[1:3]
start = time.perf_counter()
with requests.get(url, stream=True, headers={"Accept-Encoding": "identity"}) as r, open(out, "wb") as f:
    r.raise_for_status()
    for chunk in r.iter_content(1 << 20):
        f.write(chunk)
print(time.perf_counter() - start)
"""

MHUB = """
import sys, time
import requests, mhub.hub.download  # imported before the clock, like the bare stream's requests
from mhub._specs import WeightSpec
import mhub.hub.integrity as integrity
if sys.argv[4] == "inline":  # the variant without the hashing thread
    integrity.StreamHasher.__init__.__kwdefaults__["threaded"] = False
if sys.argv[4] == "s3":  # s3fs before the clock, as on s3fs's side; and the registry, which an s3:// source
    import s3fs, mhub.hub.objectstore, mhub._registry  # consults for plugin schemes (a pull by name builds it)
    mhub._registry.get_registry()
url, digest, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = WeightSpec(model="bench", tag="gib", sources=(url,), license="-", format="safetensors",
                  sha256=digest, size=size, filename="payload.bin")
start = time.perf_counter()
path = __import__("mhub").pull(spec, progress=False)
print(time.perf_counter() - start)
"""


S3FS_GET = """
import sys, time
import s3fs
start = time.perf_counter()
s3fs.S3FileSystem(max_concurrency=1).get_file(sys.argv[1], sys.argv[2])
print(time.perf_counter() - start)
"""

HASH = """
import hashlib, sys, time
start = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    print(hashlib.file_digest(handle, "sha256").hexdigest() and time.perf_counter() - start)
"""


def make_payload(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(CHUNK * 16, left))
            digest.update(block)
            handle.write(block)
            left -= len(block)
    return digest.hexdigest()


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float | None]:
    """(process wall seconds, seconds the child reports for the transfer itself, if it prints them)."""
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    try:
        return wall, float(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return wall, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-s3", dest="s3", action="store_false", help="skip the S3 rows")
    args = parser.parse_args()
    size = args.size_mib << 20
    curl = shutil.which("curl")

    with tempfile.TemporaryDirectory(prefix="mhub-bench-") as tmp, LoopbackServer() as server:
        tmp = Path(tmp)
        payload = tmp / "payload.bin"
        print(f"writing {args.size_mib} MiB of random bytes ...", flush=True)
        digest = make_payload(payload, size)
        url = server.add("/payload.bin", payload)
        out = tmp / "out.bin"
        env = {**os.environ, "PYTHONPATH": str(REPO / "core")}

        def run_mhub(variant: str):
            home = tmp / "home"
            shutil.rmtree(home, ignore_errors=True)
            return timed([sys.executable, "-c", MHUB, url, digest, str(size), variant],
                         env={**env, "MHUB_HOME": str(home)})

        sides = {
            "mhub.pull (sha256, hashing thread)": lambda: run_mhub("threaded"),
            "mhub.pull (sha256 inline)": lambda: run_mhub("inline"),
            "requests stream to disk (no hash)": lambda: timed([sys.executable, "-c", BARE, url, str(out)]),
        }
        if curl:
            sides["curl -o"] = lambda: timed([curl, "-s", "-f", "-o", str(out), url])
        # The floor for any hash-verified download: one thread running sha256 over the bytes (page cache).
        sides["sha256 of the file alone (hashlib)"] = lambda: timed([sys.executable, "-c", HASH, str(payload)])
        results: dict[str, list[tuple[float, float | None]]] = {name: [] for name in sides}
        for name, run in sides.items():  # one warm-up each (page cache, first connections)
            run()
        for _ in range(args.repeats):
            for name, run in sides.items():  # interleaved, so drift hits every side alike
                out.unlink(missing_ok=True)
                results[name].append(run())
        got = hashlib.sha256((tmp / "home" / "blobs" / "sha256" / digest).read_bytes()).hexdigest() \
            if (tmp / "home" / "blobs" / "sha256" / digest).exists() else None
        s3_results = s3_rows(tmp, payload, digest, size, args.repeats) if args.s3 and s3_available() else None

    wall = {name: statistics.median(w for w, _ in runs) for name, runs in results.items()}
    inner = {name: statistics.median(i for _, i in runs) if runs[0][1] is not None else None
             for name, runs in results.items()}
    bare = wall["requests stream to disk (no hash)"]
    print(f"\n{args.size_mib} MiB over 127.0.0.1, median of {args.repeats} (whole process; transfer only)")
    print(f"{'client':40s} {'process s':>10s} {'MiB/s':>8s} {'transfer s':>11s} {'x bare':>7s} {'x curl':>7s}")
    for name in results:
        curl_ratio = f"{wall[name] / wall['curl -o']:7.2f}" if curl else "      -"
        transfer = f"{inner[name]:11.3f}" if inner[name] is not None else "          -"
        print(f"{name:40s} {wall[name]:10.3f} {args.size_mib / wall[name]:8.0f} {transfer} "
              f"{wall[name] / bare:7.2f} {curl_ratio}")
    ours = wall["mhub.pull (sha256, hashing thread)"]
    print(f"\nmhub / bare stream = {ours / bare:.2f} ({'meets' if ours / bare <= 1.3 else 'MISSES'} the 1.3x target)")
    if curl:
        ratio = ours / wall["curl -o"]
        print(f"mhub / curl        = {ratio:.2f} ({'meets' if ratio <= 1.0 else 'MISSES'} the 'no slower' target)")
    print(f"inline hashing takes {wall['mhub.pull (sha256 inline)'] / ours:.2f}x the time of the hashing thread")
    floor = inner["sha256 of the file alone (hashlib)"]
    print(f"sha256 alone runs at {args.size_mib / floor:.0f} MiB/s here: no in-stream verified download can take "
          f"less than {floor:.3f} s; mhub's transfer took {inner['mhub.pull (sha256, hashing thread)']:.3f} s")
    print(f"cached blob re-hashed independently: {'ok' if got == digest else 'MISMATCH'}")
    if s3_results is not None:
        print_s3(s3_results, args.size_mib, args.repeats)
    elif args.s3:
        print("\nS3 rows skipped: s3fs and moto are not installed (pip install -e '.[dev]')")


def s3_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("s3fs", "moto"))


def s3_rows(tmp: Path, payload: Path, digest: str, size: int, repeats: int) -> dict[str, list]:
    """Time `mhub.pull` of an s3:// source against s3fs's own download, interleaved, from moto on 127.0.0.1.

    Returns the per-run timings and whether the last cached blob re-hashed to the digest.
    """
    from s3_loopback import S3Server

    with S3Server() as server, server.configured(str(tmp)):
        url = server.preload("mhub-bench", "payload.bin", payload)
        out = tmp / "s3-out.bin"
        env = {**os.environ, "PYTHONPATH": str(REPO / "core")}

        def run_mhub():
            shutil.rmtree(tmp / "s3-home", ignore_errors=True)
            return timed_cpu([sys.executable, "-c", MHUB, url, digest, str(size), "s3"],
                             env={**env, "MHUB_HOME": str(tmp / "s3-home")})

        sides = {"mhub.pull s3:// (sha256, verified)": run_mhub,
                 "s3fs get_file (no hash)": lambda: timed_cpu([sys.executable, "-c", S3FS_GET, url, str(out)], env=env)}
        results: dict[str, list] = {name: [] for name in sides}
        for run in sides.values():  # warm-up
            run()
        for _ in range(repeats):
            for name, run in sides.items():
                out.unlink(missing_ok=True)
                results[name].append(run())
        blob = tmp / "s3-home" / "blobs" / "sha256" / digest
        results["verified"] = [blob.exists() and hashlib.sha256(blob.read_bytes()).hexdigest() == digest]
        results["gets"] = [len(server.log("GET", "mhub-bench", "payload.bin"))]
    return results


def timed_cpu(argv: list[str], env: dict[str, str]) -> tuple[float, float | None, float]:
    """:func:`timed`, plus the CPU seconds (user + system) the child used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, inner = timed(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, inner, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def print_s3(results: dict[str, list], size_mib: int, repeats: int) -> None:
    ours, theirs = "mhub.pull s3:// (sha256, verified)", "s3fs get_file (no hash)"
    wall = {name: statistics.median(r[0] for r in results[name]) for name in (ours, theirs)}
    inner = {name: statistics.median(r[1] for r in results[name]) for name in (ours, theirs)}
    cpu = {name: statistics.median(r[2] for r in results[name]) for name in (ours, theirs)}
    print(f"\n{size_mib} MiB from moto's S3 server on 127.0.0.1, median of {repeats} (whole process; transfer only; "
          "client CPU)")
    print(f"{'client':40s} {'process s':>10s} {'MiB/s':>8s} {'transfer s':>11s} {'x s3fs':>7s} {'CPU s':>7s}")
    for name in (ours, theirs):
        print(f"{name:40s} {wall[name]:10.3f} {size_mib / wall[name]:8.0f} {inner[name]:11.3f} "
              f"{inner[name] / inner[theirs]:7.2f} {cpu[name]:7.2f}")
    ratio = inner[ours] / inner[theirs]
    print(f"\nmhub / s3fs get_file (transfer) = {ratio:.2f} ({'meets' if ratio <= 1.2 else 'MISSES'} the 1.2x target); "
          f"whole process {wall[ours] / wall[theirs]:.2f}")
    print(f"cached blob re-hashed independently: {'ok' if results['verified'][0] else 'MISMATCH'}; "
          f"{results['gets'][0]} GETs of the object in {2 * (repeats + 1)} runs")


if __name__ == "__main__":
    main()
