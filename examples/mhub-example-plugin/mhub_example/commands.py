"""``mhub example-prefixes NAME``: the command the example plugin adds to ``mhub``.

Imported by every ``mhub`` invocation (through ``register_commands``), so only click is imported at the
top; torch is imported when the command runs.
"""

from __future__ import annotations

import click


@click.command("example-prefixes")
@click.argument("name")
def prefixes_command(name: str) -> None:
    """Print the state-dict prefixes of NAME's convolutions and linear layers (what first_conv and
    classifier name), building the model on the meta device (no memory, no weights)."""
    import torch
    from torch import nn

    import mhub

    arch = mhub.get_registry().arch(name)
    with torch.device("meta"):
        model = mhub.create(name)
    for prefix, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            role = {arch.first_conv: "  <- first_conv", arch.classifier: "  <- classifier"}.get(prefix, "")
            shape = "x".join(str(size) for size in module.weight.shape)
            click.echo(f"{prefix}  {type(module).__name__} {shape}{role}")
