"""Write weights/tinynet-demo.pth: the "upstream" checkpoint the demo weight set serves.

The authors of a real family publish trained checkpoints; this example makes a deterministic untrained
one in the upstream layout (random BatchNorm statistics, so every tensor matters). See README.md for the
steps that turn it into the manifest entry and the reference outputs.
"""

from pathlib import Path

import torch

from mhub_example.upstream import build


def main() -> None:
    torch.manual_seed(0)
    model = build("tinynet", num_classes=10, in_chans=3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    out = Path(__file__).resolve().parent / "weights" / "tinynet-demo.pth"
    out.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), out)
    print(out)


if __name__ == "__main__":
    main()
