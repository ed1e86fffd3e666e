"""Cold-process latency of `mhub list` against `import torch` and timm's `list_models()`.

Each command runs in a fresh interpreter REPEATS times (after one warm-up run that fills the OS file
cache); the median wall time is reported with its ratio to `import torch`. Target: `mhub list` at most
0.1x the torch import. Bytecode caching is left on (as after any pip install, where torch's .pyc files
exist too), even when the calling shell sets PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import shutil
import statistics
import os
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 7
MHUB = shutil.which("mhub", path=str(Path(sys.executable).parent)) or "mhub"
COMMANDS = {
    "mhub list": [MHUB, "list"],
    "python -m mhub list": [sys.executable, "-m", "mhub", "list"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "timm.list_models() (cold)": [sys.executable, "-c", "import timm; timm.list_models()"],
    "python -c 'pass'": [sys.executable, "-c", "pass"],
}


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_seconds(argv: list[str]) -> float:
    subprocess.run(argv, check=True, capture_output=True, env=ENV)  # warm the file and bytecode caches
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    results = {name: median_seconds(argv) for name, argv in COMMANDS.items()}
    torch_time = results["python -c 'import torch'"]
    print(f"{'command':32s} {'median s':>9s} {'x import torch':>15s}")
    for name, seconds in results.items():
        print(f"{name:32s} {seconds:9.3f} {seconds / torch_time:15.3f}")
    ratio = results["mhub list"] / torch_time
    verdict = "meets" if ratio <= 0.1 else "MISSES"
    print(f"\nmhub list / import torch = {ratio:.3f} ({verdict} the 0.1x target); "
          f"mhub list / cold timm.list_models() = {results['mhub list'] / results['timm.list_models() (cold)']:.3f}")


if __name__ == "__main__":
    main()
