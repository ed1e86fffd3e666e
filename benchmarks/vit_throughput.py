"""ViT-B/16 CPU inference throughput: mhub against timm and torchvision, interleaved in one process.

The three models hold the same weights (a random torchvision ``vit_b_16`` converted to mhub's layout and to
timm's), run in eval mode under ``torch.inference_mode`` on the same input batch. After one warm-up call each,
every round times one forward pass of each model, in an order that rotates from round to round, so that load
from other processes on the machine falls on all three alike. Printed: median and best images/s per model, mhub's
ratio to the faster peer, and the largest output difference (the three compute the same function). Target: mhub
at least as fast as the faster of timm and torchvision.

    python benchmarks/vit_throughput.py [--batch 8] [--rounds 7] [--threads N]

On a machine other processes load, ``--threads 1`` gives steadier figures: a model then never waits for a
second core that another process holds.
"""

from __future__ import annotations

import argparse
import statistics
import time


def build_models():
    import timm
    import torch
    import torchvision

    import mhub
    from mhub_vit.convert import from_torchvision

    torch.manual_seed(0)
    reference = torchvision.models.vit_b_16()
    with torch.no_grad():  # torchvision zero-initialises its head: give every tensor non-trivial values
        for tensor in reference.parameters():
            tensor.add_(torch.randn_like(tensor), alpha=0.02)
    ours = mhub.create("vit_b_16")
    ours.load_state_dict(from_torchvision(reference.state_dict()), strict=True)
    theirs = timm.create_model("vit_base_patch16_224")
    # our layout is timm's with "backbone."/"classifier." prefixes and the embeddings under "embed."
    timm_state = {k.removeprefix("backbone.").removeprefix("embed.").replace("classifier.fc.", "head."): v
                  for k, v in ours.state_dict().items()}
    theirs.load_state_dict(timm_state, strict=True)
    return {"mhub": ours.eval(), "timm": theirs.eval(), "torchvision": reference.eval()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    models = build_models()
    x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        outputs = {name: model(x) for name, model in models.items()}  # warm-up
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                models[name](x)
                times[name].append(time.perf_counter() - start)
    rate = {name: args.batch / statistics.median(values) for name, values in times.items()}
    best = {name: args.batch / min(values) for name, values in times.items()}
    print(f"ViT-B/16, batch {args.batch}, 224 px, {torch.get_num_threads()} threads, {args.rounds} interleaved "
          f"rounds")
    for name in names:
        print(f"  {name:12s} {rate[name]:7.2f} images/s median, {best[name]:7.2f} best "
              f"({statistics.median(times[name]) * 1e3:7.1f} ms/batch median)")
    peer = max(("timm", "torchvision"), key=rate.get)
    print(f"  mhub / {peer} (the faster peer by median): {rate['mhub'] / rate[peer]:.3f}x median, "
          f"{best['mhub'] / best[peer]:.3f}x best")
    scale = float(outputs["torchvision"].abs().max())
    diff = max(float((outputs[name] - outputs["torchvision"]).abs().max()) for name in ("mhub", "timm"))
    print(f"  largest output difference to torchvision: {diff:.2e} (logit scale {scale:.2f})")


if __name__ == "__main__":
    main()
