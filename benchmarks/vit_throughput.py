"""ViT-B/16 CPU inference throughput: mhub against timm and torchvision, interleaved in one process.

A thin run of :func:`mhub.bench.benchmark` (what ``mhub bench vit_b_16 --compare torchvision --compare timm``
prints): every model gets the same batch, rounds alternate between the models in forward then reverse order,
figures are medians over rounds and speed-ups are paired per round. The line that matters is mhub's eager model
against the faster of timm's and torchvision's eager models. Target: mhub at least as fast.

    python benchmarks/vit_throughput.py [--batch 8] [--rounds 7] [--threads N]

On a machine other processes load, ``--threads 1`` gives steadier figures: a model then never waits for a
second core that another process holds.
"""

from __future__ import annotations

import argparse

PEERS = ("torchvision eager", "timm eager")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    from mhub.bench import benchmark

    if args.threads:
        torch.set_num_threads(args.threads)
    report = benchmark("vit_b_16", batch_size=args.batch, compare=["torchvision", "timm"], rounds=args.rounds)
    print(report.table())
    faster = max(PEERS, key=lambda label: report.timing(label).images_per_second)
    # speed-ups are relative to torchvision eager, per round: their ratio is mhub's over the faster peer
    ratio = report.speedup("mhub eager") / report.speedup(faster)
    print(f"mhub eager / {faster} (the faster peer by median): {ratio:.3f}x")


if __name__ == "__main__":
    main()
