"""Inference throughput: mhub fused + channels-last against torchvision's and timm's eager models, interleaved.

resnet50 against torchvision (target on CPU: fused + channels-last >= 1.45x torchvision eager, float32),
efficientnet_b0 and mobilenet_v3_large against timm; batch 8 at 224 px, random weights. Each model runs
through ``mhub.bench.benchmark``: every variant gets the same batch, and rounds alternate between the variants,
so a shared machine that slows down mid-run slows them alike; figures are medians over rounds.

With ``--device cuda`` (``scripts/gpu_check.sh`` runs it with ``--dtype bfloat16``) every model is compared with
timm; without a CUDA device that run prints a skip line and exits 0.

    python benchmarks/inference_cpu.py [--device cpu|cuda] [--dtype float32|bfloat16|float16] [--rounds 10]
                                       [--batch-size 8] [--threads N] [--compile] [--json]
"""

from __future__ import annotations

import argparse
import json

TARGET = 1.45  # resnet50 fused + channels-last over torchvision eager, CPU float32
MODELS = (("resnet50", "torchvision"), ("efficientnet_b0", "timm"), ("mobilenet_v3_large", "timm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, one per core)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args()

    import torch

    from mhub.bench import benchmark

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("inference benchmark on cuda: skipped (no CUDA device: torch.cuda.is_available() is False)")
        return
    reports = []
    for name, peer in MODELS:
        report = benchmark(name, batch_size=args.batch_size, image_size=args.image_size, device=args.device,
                           dtype=args.dtype, compare=["timm" if args.device == "cuda" else peer],
                           compile=args.compile, rounds=args.rounds)
        reports.append(report)
        if not args.json:
            print(report.table(), end="\n\n", flush=True)
    if args.json:
        print(json.dumps([report.to_dict() for report in reports], indent=2))
        return
    for report in reports:
        speedup = report.speedup("mhub fused + channels-last")
        line = f"{report.model}: mhub fused + channels-last = {speedup:.2f}x {report.baseline}"
        if (report.model, report.device, report.dtype, report.batch_size, report.image_size, report.baseline) == \
                ("resnet50", "cpu", "float32", 8, 224, "torchvision eager"):
            line += f" ({'meets' if speedup >= TARGET else 'MISSES'} the {TARGET}x target)"
        print(line)


if __name__ == "__main__":
    main()
