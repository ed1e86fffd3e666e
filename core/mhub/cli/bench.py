"""``mhub bench NAME``: inference throughput of eager, fused and channels-last models against their peers.

Torch-free at import (``mhub --help`` loads this module); :mod:`mhub.bench` loads inside the command.
"""

from __future__ import annotations

import click

from ._output import emit_json


@click.command("bench")
@click.argument("name")
@click.option("--batch-size", "-b", default=8, show_default=True, type=click.IntRange(min=1), help="Images per call.")
@click.option("--image-size", "-s", default=224, show_default=True, type=click.IntRange(min=1),
              help="Input height and width.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16", "float16"]),
              help="Models and input are cast to it (after fusion).")
@click.option("--compare", "compare", multiple=True, type=click.Choice(["torchvision", "timm", "none"]),
              help="Peer to time side by side, eager and channels-last (repeatable; default: torchvision if it "
                   "has NAME, else timm; 'none' for none). Random weights: nothing is downloaded.")
@click.option("--compile", "compile_", is_flag=True,
              help="Also time the fused channels-last model under torch.compile (compiled while warming up).")
@click.option("--rounds", default=10, show_default=True, type=click.IntRange(min=1),
              help="Timed rounds per variant, interleaved.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=1), help="Untimed calls per variant.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_command(name: str, batch_size: int, image_size: int, device: str, dtype: str, compare: tuple[str, ...],
                  compile_: bool, rounds: int, warmup: int, as_json: bool) -> None:
    """Images per second and latency of NAME: eager, fused, fused + channels-last (and compiled), interleaved.

    The models have random weights. Each variant runs the same batch; rounds alternate between variants and
    the median time per call is reported, with the speed-up against the peer's eager model. On CPU,
    subnormal floats are flushed to zero while timing, for every variant.
    """
    from ..bench import benchmark

    peers = None if not compare else [peer for peer in compare if peer != "none"]
    log = (lambda line: click.echo(line, err=True)) if as_json else (lambda _: None)
    report = benchmark(name, batch_size=batch_size, image_size=image_size, device=device, dtype=dtype,
                       compare=peers, compile=compile_, rounds=rounds, warmup=warmup, log=log)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(report.table())
