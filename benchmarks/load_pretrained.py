"""Pretrained resnext101_32x8d from a warm cache: `mhub.create(..., pretrained=True)` vs torchvision's usual path.

The checkpoint is a random-init torchvision resnext101_32x8d saved locally as a `.pth` (torchvision
layout), registered through `MHUB_REGISTRY` as a `file://` source and pulled once (download + conversion
to safetensors): the cache is warm before anything is timed. Each side then runs in its own fresh
process, REPEATS times, interleaved:

- torchvision: `resnext101_32x8d()` (random init), `torch.load(path, weights_only=True)`,
  `load_state_dict`, `eval()`, forward;
- mhub: `mhub.create("resnext101_32x8d.bench", pretrained=True)` (meta build, memory-mapped
  safetensors assigned in place), `eval()`, forward.

Both import torch and their model code before the clock starts (torchvision, mhub_resnet.model). Printed:
time from after the imports to the first forward's output (median), whole-process wall time, peak RSS,
and the largest difference between the two outputs. Target: mhub <= 0.25x torchvision's time, peak RSS
no higher.

    python benchmarks/load_pretrained.py [--image-size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCHVISION = """
import json, resource, sys, time
import torch, torchvision
path, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
t0 = time.perf_counter()
model = torchvision.models.resnext101_32x8d()
t1 = time.perf_counter()
state = torch.load(path, weights_only=True)
t2 = time.perf_counter()
model.load_state_dict(state)
model.eval()
t3 = time.perf_counter()
with torch.no_grad():
    y = model(x)
t4 = time.perf_counter()
torch.save(y, out)
print(json.dumps({"total": t4 - t0, "parts": {"construct": t1 - t0, "torch.load": t2 - t1,
                  "load_state_dict": t3 - t2, "forward": t4 - t3},
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

MHUB = """
import json, resource, sys, time
import torch, mhub, mhub_resnet.model
size, out = int(sys.argv[1]), sys.argv[2]
x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
t0 = time.perf_counter()
model = mhub.create("resnext101_32x8d.bench", pretrained=True)
model.eval()
t1 = time.perf_counter()
with torch.no_grad():
    y = model(x)
t2 = time.perf_counter()
torch.save(y, out)
print(json.dumps({"total": t2 - t0, "parts": {"create(pretrained=True)": t1 - t0, "forward": t2 - t1},
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

MANIFEST = """[[weights]]
model = "resnext101_32x8d"
tag = "bench"
sources = ["{url}"]
format = "torch-pickle"
converter = "torchvision.resnet"
license = "BSD-3-Clause"
sha256 = "{sha256}"
size = {size}
"""


def run(argv: list[str], env: dict[str, str]) -> dict:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{result.stderr[-3000:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "process": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    import torchvision

    with tempfile.TemporaryDirectory(prefix="mhub-load-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = tmp / "resnext101_32x8d-bench.pth"
        torch.manual_seed(0)
        torch.save(torchvision.models.resnext101_32x8d().state_dict(), checkpoint)
        data = checkpoint.read_bytes()
        (tmp / "registry").mkdir()
        (tmp / "registry" / "bench.toml").write_text(MANIFEST.format(
            url=checkpoint.as_uri(), sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
        del data
        # bytecode caching on, as after a pip install (torch's .pyc exist; ours are written by the first run)
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
               "MHUB_HOME": str(tmp / "home"), "MHUB_REGISTRY": str(tmp / "registry")}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mhub", "pull", "resnext101_32x8d.bench", "--quiet"], env=env,
                       check=True, capture_output=True)
        print(f"checkpoint {checkpoint.stat().st_size / 2**20:.0f} MiB; first pull (copy, verify, convert to "
              f"safetensors): {time.perf_counter() - start:.2f} s")

        sides = {
            "torchvision": lambda: run([sys.executable, "-c", TORCHVISION, str(checkpoint), str(args.image_size),
                                        str(tmp / "y_tv.pt")], env),
            "mhub": lambda: run([sys.executable, "-c", MHUB, str(args.image_size), str(tmp / "y_mhub.pt")], env),
        }
        for side in sides.values():  # warm the page cache and the interpreter's files
            side()
        results: dict[str, list[dict]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, side in sides.items():
                results[name].append(side())
        outputs = [torch.load(tmp / f"y_{side}.pt", weights_only=True) for side in ("tv", "mhub")]
        difference = (outputs[0] - outputs[1]).abs().max().item()

    def median(name: str, key: str, part: str | None = None) -> float:
        return statistics.median(r["parts"][part] if part else r[key] for r in results[name])

    print(f"\nresnext101_32x8d, warm cache, input 1x3x{args.image_size}x{args.image_size}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    print(f"{'side':12s} {'imports->output s':>18s} {'process s':>10s} {'peak RSS MiB':>13s}   breakdown")
    for name in results:
        parts = ", ".join(f"{part} {median(name, '', part):.3f}" for part in results[name][0]["parts"])
        print(f"{name:12s} {median(name, 'total'):18.3f} {median(name, 'process'):10.3f} "
              f"{median(name, 'peak_rss_mib'):13.0f}   {parts}")
    tv_load = statistics.median(r["total"] - r["parts"]["forward"] for r in results["torchvision"])
    mhub_load = median("mhub", "", "create(pretrained=True)")
    print(f"\nloading alone (before the forward): torchvision {tv_load:.3f} s, mhub {mhub_load:.3f} s "
          f"= {mhub_load / tv_load:.3f}x")
    ratio = median("mhub", "total") / median("torchvision", "total")
    rss_ratio = median("mhub", "peak_rss_mib") / median("torchvision", "peak_rss_mib")
    print(f"mhub / torchvision, after imports to first output: {ratio:.3f} "
          f"({'meets' if ratio <= 0.25 else 'MISSES'} the 0.25x target)")
    print(f"whole process: {median('mhub', 'process') / median('torchvision', 'process'):.3f}x; "
          f"peak RSS: {rss_ratio:.3f}x ({'meets' if rss_ratio <= 1.0 else 'MISSES'} 'no higher')")
    print(f"max |output difference| = {difference:.2e}")


if __name__ == "__main__":
    main()
