"""``mhub eval NAME[.TAG] DATA``: top-1/top-5 of a weight set on a labelled image set, on one process or many.

Torch-free at import (``mhub --help`` loads this module); :mod:`mhub.evaluation` loads inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._options import parse_pairs
from ._output import emit_json


@click.command("eval")
@click.argument("name", metavar="NAME[.TAG]")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Evaluate this safetensors checkpoint (mhub layout, from mhub convert) instead of the "
                   "registered weights.")
@click.option("--preprocess", "preprocess", multiple=True, metavar="KEY=VALUE",
              help="Override the weight set's preprocessing, e.g. interpolation=bicubic (repeatable).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="Images per forward pass (per process).")
@click.option("--workers", type=click.IntRange(min=0),
              help="DataLoader worker processes per process [default: min(4, CPUs)].")
@click.option("--device", help="cpu, cuda or cuda:N [default: cuda when available, else cpu].")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only N images, evenly spaced over DATA.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.csv",
              help="Write path,label,top5 per image (top-5 class indices, best first).")
@click.option("--test-size", is_flag=True,
              help="Use the larger test-time input size upstream reports (preprocess test_size/test_crop_pct, "
                   "timm's test_input_size), where the weight set gives one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(name: str, data: Path, weights: Path | None, preprocess: tuple[str, ...], batch_size: int,
                 workers: int | None, device: str | None, limit: int | None, predictions: Path | None,
                 test_size: bool, as_json: bool) -> None:
    """Measure top-1 and top-5 accuracy of NAME[.TAG] on DATA with the weight set's own preprocessing.

    \b
    DATA is one of:
      a folder in ImageNet's validation layout: DATA/n01440764/*.JPEG (WordNet IDs, ImageNet-1k order)
      a folder of class-index folders:           DATA/0/*.png, DATA/1/*.png
      a CSV file of path,label rows (relative paths start at the CSV's folder)

    Unreadable images are skipped with a warning and counted. Under
    `torchrun --nproc-per-node N -m mhub eval ...` every process evaluates a disjoint block of DATA (gloo on
    CPU, NCCL on GPU), the counts are summed, and the first process alone prints and writes --predictions:
    the figures equal one process's. `mhub manifest --metrics-from` takes the --json output.
    """
    from ..evaluation import evaluate

    progress = not as_json and sys.stderr.isatty()
    result = evaluate(name, data, weights=weights, preprocess=parse_pairs(preprocess, "--preprocess"),
                      batch_size=batch_size, workers=workers, device=device, limit=limit, predictions=predictions,
                      test_size=test_size, progress=progress)
    if result.rank != 0:
        return
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"{result.weights} on {result.data}")
    click.echo(f"  top-1 {result.top1:7.3f}%   top-{result.topk} {result.top5:7.3f}%   ({result.n} images"
               + (f", {result.skipped} skipped as unreadable)" if result.skipped else ")"))
    published = {k: result.published[k] for k in ("top1", "top5") if k in result.published}
    if published:
        click.echo("  published: " + "   ".join(f"{k[:3]}-{k[3:]} {v:7.3f}%" for k, v in published.items()))
    processes = f"{result.world_size} processes" if result.world_size > 1 else "1 process"
    click.echo(f"  {result.images_per_second:.1f} images/s ({processes}, {result.device}, batch {result.batch_size})")
    if predictions is not None:
        click.echo(f"  predictions: {predictions}")
