"""The toolchain's click commands: ``convert``, ``hash``, ``validate``, ``manifest``.

Imported by ``mhub --help``, so this module stays torch-free: the work happens in the modules next to it,
imported inside each command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mhub import get_registry
from mhub.cli._options import parse_pairs
from mhub.cli._output import emit_json

FILE = click.Path(dir_okay=False, path_type=Path)
MODEL_ARG = click.option(
    "--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
    help="Architecture argument the weights need, e.g. img_size=384 (repeatable; over a registered tag's "
         "model_args).")


@click.command("convert")
@click.argument("src", type=FILE)
@click.option("--model", "name", required=True, metavar="NAME[.TAG]", help="Registered architecture to convert for.")
@click.option("--from", "source", metavar="torchvision|timm|auto|mhub|SOURCE", default=None,
              help="Layout of SRC: use the key map '<SOURCE>.<family>' (default: try every map registered for "
                   "the family), 'auto' for the structural matcher only, 'mhub' for our own layout.")
@click.option("-o", "--output", required=True, type=FILE, help="Output .safetensors file.")
@click.option("--num-classes", type=int, help="Classifier outputs (default: read from the checkpoint).")
@click.option("--in-chans", type=int, help="Input channels (default: read from the checkpoint).")
@click.option("--input-size", type=int, default=224, show_default=True,
              help="Input size of the (meta-device) forward pass that orders the model's tensors.")
@MODEL_ARG
def convert_command(src: Path, name: str, source: str | None, output: Path, num_classes: int | None,
                    in_chans: int | None, input_size: int, model_args: tuple[str, ...]) -> None:
    """Convert checkpoint SRC (a torch checkpoint, read with weights_only=True, or a safetensors file; told
    apart by their first bytes, not the file's suffix) to mhub's layout.

    A registered key map is used when one fits; otherwise a structural matcher pairs tensors by the model's
    forward order and shape, prints the mapping, and refuses ambiguity. The output carries metadata: model,
    source sha256, converter and mhub version.
    """
    from mhub.hub.convert import read_checkpoint
    from mhub.hub.integrity import sha256_file

    from .convert import convert_state, save_converted

    # an unknown name fails before the (possibly long) read; a registered tag's model_args apply
    arch = get_registry().arch_for(name, **parse_pairs(model_args, "--model-arg"))
    if output.suffix != ".safetensors":
        raise click.UsageError(f"output '{output}' must end in .safetensors")
    digest, size = sha256_file(src) if src.is_file() else ("", 0)
    state = read_checkpoint(src)
    click.echo(f"read {src}: {len(state)} tensors, {size} bytes, sha256 {digest}")
    match = convert_state(arch, state, source=source, num_classes=num_classes, in_chans=in_chans,
                          size=input_size, log=click.echo)
    if match.pairs:
        click.echo("mapping (checkpoint -> model, in forward order):")
        for source_key, target_key in match.pairs:
            click.echo(f"  {source_key} -> {target_key}  {list(match.state[target_key].shape)}")
    save_converted(output, match, model=name, source_sha256=digest)
    click.echo(f"wrote {output}: {len(match.state)} tensors for {name}, converter {match.converter}")


@click.command("hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def hash_command(files: tuple[Path, ...], as_json: bool) -> None:
    """Print the sha256 and size (bytes) of each FILE, as 'SHA256  SIZE  PATH'."""
    from mhub.hub.integrity import sha256_file

    rows = []
    for path in files:
        digest, size = sha256_file(path)
        rows.append({"path": str(path), "sha256": digest, "size": size})
        if not as_json:
            click.echo(f"{digest}  {size}  {path}")
    if as_json:
        emit_json(rows)


@click.command("validate")
@click.argument("name", metavar="NAME[.TAG]")
@click.option("--weights", required=True, type=FILE, help="Checkpoint in mhub's layout (from mhub convert).")
@click.option("--device", "devices", multiple=True, type=click.Choice(["cpu", "cuda"]),
              help="Run on this device (repeatable; default cpu). cuda runs with TF32 off, then on.")
@click.option("--reference", metavar="FILE|LIBRARY:NAME",
              help="Reference outputs: a file, or an upstream implementation: torchvision:NAME, timm:NAME or a "
                   "library a plugin registers (default: the weight set's file).")
@click.option("--reference-weights", type=FILE,
              help="Upstream checkpoint for a LIBRARY:NAME reference (default: the weights under test, "
                   "mapped back to the upstream layout).")
@click.option("--image", "images", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Also print the top-5 ImageNet labels of this image (repeatable).")
@click.option("--input-size", type=int, help="Reference input size when no reference file fixes it.")
@click.option("--preprocess", "preprocess", multiple=True, metavar="KEY=VALUE",
              help="Preprocessing for --image; its crop is also the reference input size of a LIBRARY:NAME "
                   "reference unless --input-size is given (default: the weight set's, else the architecture's "
                   "default weight set's, else ImageNet's), e.g. crop=384 interpolation=bicubic (repeatable).")
@MODEL_ARG
@click.option("--fuse", is_flag=True, help="Validate the fused model (mhub.fuse: BatchNorm folded, convolutions fused) instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def validate_command(name: str, weights: Path, devices: tuple[str, ...], reference: str | None,
                     reference_weights: Path | None, images: tuple[str, ...], input_size: int | None,
                     preprocess: tuple[str, ...], model_args: tuple[str, ...], fuse: bool, as_json: bool) -> None:
    """Compare the outputs of NAME with --weights against reference outputs on each device.

    Reports max abs error, cosine similarity and top-5 agreement per run and exits 1 when any run is
    outside its tolerance (fp32: max abs <= 1e-4 * max(1, max|ref|), cosine >= 0.99999; CUDA with TF32 on:
    1e-2 and 0.999). The reference input is mhub's deterministic synthetic batch (see mhub_tools.reference).

    This proves the outputs, not the accuracy claim: measure top-1/top-5 on a labelled image set with
    'mhub eval NAME DATA --weights FILE' (and give its --json output to 'mhub manifest --metrics-from').
    """
    from .validate import validate

    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    report = validate(name, weights, devices=devices or ("cpu",), reference=reference,
                      reference_weights=reference_weights, images=images, size=input_size,
                      preprocess=parse_pairs(preprocess, "--preprocess"),
                      model_args=parse_pairs(model_args, "--model-arg"), fuse=fuse, log=log)
    if as_json:
        emit_json({"reference": report.reference, "passed": report.passed, "skipped": report.skipped,
                   "runs": [c.to_dict() for c in report.comparisons],
                   "images": [{"image": path, "top5": [{"index": i, "label": label, "probability": p}
                                                       for i, label, p in top]} for path, top in report.images]})
    else:
        click.echo(f"reference: {report.reference}")
        for comparison in report.comparisons:
            click.echo(comparison.line())
        for line in report.skipped:
            click.echo(line)
        for path, top in report.images:
            click.echo(f"{path}:")
            for index, label, probability in top:
                click.echo(f"  {probability:7.2%}  {index:4d}  {label}")
    if not report.passed:
        failed = [c.run for c in report.comparisons if not c.passed] or ["no run"]
        click.echo(f"mhub: validation failed: {', '.join(failed)} outside tolerance", err=True)
        sys.exit(1)
    if not as_json:
        click.echo("validation passed")


@click.command("manifest")
@click.argument("name", metavar="NAME.TAG")
@click.option("--weights", required=True, type=FILE, help="The file users will download.")
@click.option("--source", "sources", multiple=True, required=True,
              help="URL the file will be served from (repeatable, in order of preference).")
@click.option("--license", "license_", required=True, help="Licence of the weights (e.g. BSD-3-Clause).")
@click.option("--metric", "metrics", multiple=True, metavar="KEY=VALUE", help="e.g. top1=76.13 (repeatable).")
@click.option("--metrics-from", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="EVAL.json",
              help="Record top1/top5 measured by 'mhub eval NAME DATA --weights FILE --json' (--metric wins).")
@click.option("--preprocess", "preprocess", multiple=True, metavar="KEY=VALUE",
              help="Override the ImageNet defaults: crop=224 interpolation=bilinear mean=0.485,0.456,0.406 "
                   "std=0.229,0.224,0.225, resize=floor(crop/crop_pct) with crop_pct=0.875; also crop_pct, "
                   "crop_mode, test_size, test_crop_pct (repeatable; see mhub.imaging).")
@click.option("--converter", help="Key map applied at pull time (only for torch-pickle files in upstream layout).")
@click.option("--default", "default", is_flag=True, help="Make this tag the architecture's default.")
@click.option("--description", help="Free text (default: the provenance mhub convert recorded).")
@click.option("--reference", metavar="LIBRARY:NAME",
              help="Take the reference outputs from this upstream implementation (torchvision:NAME, timm:NAME or "
                   "a library a plugin registers) instead of mhub's model.")
@click.option("--reference-weights", type=FILE, help="Upstream checkpoint for --reference.")
@MODEL_ARG
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Registry directory: <family>.toml and references/ are written here.")
def manifest_command(name: str, weights: Path, sources: tuple[str, ...], license_: str, metrics: tuple[str, ...],
                     metrics_from: Path | None, preprocess: tuple[str, ...], converter: str | None, default: bool,
                     description: str | None, reference: str | None, reference_weights: Path | None,
                     model_args: tuple[str, ...], output_dir: Path) -> None:
    """Write the [[weights]] entry for NAME.TAG and its reference-output file.

    The directory can be used as it is through MHUB_REGISTRY, or copied into registry/ for a pull request.
    """
    from .manifest import write_entry

    metric_values = parse_pairs(metrics, "--metric")
    written = write_entry(name, weights, sources=sources, license=license_, metrics=metric_values,
                          metrics_from=metrics_from, preprocess=parse_pairs(preprocess, "--preprocess"),
                          converter=converter, default=default, description=description, reference=reference,
                          reference_weights=reference_weights, model_args=parse_pairs(model_args, "--model-arg"),
                          out_dir=output_dir, log=click.echo)
    click.echo(written.text, nl=False)
    click.echo(f"wrote {written.manifest} and {written.reference}")


COMMANDS = (convert_command, hash_command, validate_command, manifest_command)
