"""``mhub predict NAME[.TAG] IMAGE… [--topk K] [--json]``: classify images with a pretrained weight set.

Torch-free at import (``mhub --help`` loads this module); the model and Pillow load inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ._output import emit_json


@click.command("predict")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topk", "-k", default=5, show_default=True, type=click.IntRange(min=1), help="Classes to show.")
@click.option("--endpoint", metavar="URL", help="Mirror to pull missing weights from (default $MHUB_ENDPOINT).")
@click.option("--fuse", is_flag=True, help="Fuse the model first (mhub.fuse: BatchNorm, activations and additions into the convolutions; same outputs, faster).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict_command(name: str, images: tuple[Path, ...], topk: int, endpoint: str | None, fuse: bool,
                    as_json: bool) -> None:
    """Classify IMAGES with the weights NAME[.TAG], using the weight set's own preprocessing.

    The weights are pulled into the cache first if needed; labels are ImageNet-1k class names.
    """
    import torch

    from .. import create, get_registry, imaging

    if endpoint:
        os.environ["MHUB_ENDPOINT"] = endpoint  # read by the hub client when it pulls
    spec = get_registry().weights_for(name)
    spec.require_classifier("classify images")  # before anything is pulled
    model = create(spec.name, pretrained=True, fuse=fuse).eval()
    batch = imaging.load_images(images, spec.preprocess)
    with torch.inference_mode():
        logits = model(batch)
    results = imaging.topk(logits, topk, spec.num_classes)
    if as_json:
        emit_json([{"image": str(path), "weights": spec.name,
                    "top": [{"index": i, "label": label, "probability": p} for i, label, p in top]}
                   for path, top in zip(images, results)])
        return
    for path, top in zip(images, results):
        click.echo(f"{path}  ({spec.name})")
        for rank, (index, label, probability) in enumerate(top, 1):
            click.echo(f"  {rank}. {label:<32s} {100 * probability:6.2f}%  (class {index})")
