"""Write the registry entry of a new weight set: a ``[[weights]]`` TOML table plus its reference-output file.

The output directory is laid out like ``registry/``: entries go to ``<family>.toml`` (appended when the file
exists, so hand-written comments survive) and reference outputs to ``references/<model>.<tag>.safetensors``.
Such a directory works as an ``MHUB_REGISTRY`` entry as it is, or is copied into ``registry/`` for a pull
request.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mhub
from mhub import ConversionError, ManifestError, imaging
from mhub._manifest import load_manifest
from mhub.hub.convert import checkpoint_format

# mhub.imaging's defaults (ImageNet's), as a manifest writes them; resize is written too: floor(crop /
# crop_pct), crop_pct 0.875 unless given (see mhub.imaging)
DEFAULT_PREPROCESS: dict[str, Any] = {
    key: list(value) if isinstance(value, tuple) else value
    for key, value in imaging.resolve().items() if key in ("crop", "interpolation", "mean", "std")
}


@dataclass
class Written:
    """What :func:`write_entry` produced."""

    manifest: Path
    reference: Path
    entry: dict[str, Any]
    text: str


def measured_metrics(path: str | Path, weights_sha256: str) -> dict[str, float]:
    """``top1`` and ``top5`` from the ``--json`` output of ``mhub eval``, rounded to 3 decimals.

    Raises:
        ManifestError: the file is not such output, or it measured a different weights file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"cannot read metrics from '{path}': {error}") from error
    if not isinstance(data, dict) or not all(isinstance(data.get(k), (int, float)) for k in ("top1", "top5")):
        raise ManifestError(f"'{path}' is not the output of 'mhub eval --json' (no numeric top1 and top5)")
    measured = data.get("weights_sha256")
    if measured is not None and measured != weights_sha256:
        raise ManifestError(f"'{path}' measured weights with sha256 {measured}, not this file ({weights_sha256})")
    return {key: round(float(data[key]), 3) for key in ("top1", "top5")}


def registry_problems(directory: str | Path) -> list[str]:
    """What a reviewer must fix in a registry directory: invalid manifests, missing or stale reference files
    (made for another reference input or class count), and reference files no entry names.

    Returns:
        One line per problem; empty when the directory is ready (``registry/`` must always be).
    """
    from .reference import load_reference

    directory = Path(directory)
    problems, named = [], set()
    for path in sorted(directory.glob("*.toml")):
        try:
            specs = load_manifest(path)
        except ManifestError as error:
            problems.append(str(error))
            continue
        for spec in (s for s in specs if s.reference):
            reference = spec.reference_path
            named.add(reference.resolve())
            if not reference.is_file():
                problems.append(f"{path.name}: {spec.name}: reference file '{spec.reference}' does not exist")
                continue
            try:
                logits = load_reference(reference).logits
            except ConversionError as error:
                problems.append(f"{path.name}: {spec.name}: {error}")
                continue
            if logits.shape[1] != spec.num_classes:
                problems.append(f"{path.name}: {spec.name}: reference has {logits.shape[1]} classes, "
                                f"the entry {spec.num_classes}")
    references = directory / "references"
    for orphan in sorted(references.glob("*") if references.is_dir() else []):
        if orphan.resolve() not in named:
            problems.append(f"references/{orphan.name}: no entry names this reference file")
    return problems


def file_metadata(path: Path) -> dict[str, str]:
    """The provenance metadata ``mhub convert`` stored in a safetensors header (empty for a pickle).

    Raises:
        ConversionError: the file is neither format, or a malformed safetensors file.
    """
    if checkpoint_format(path) != "safetensors":
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise ConversionError(f"{path}: not a readable safetensors file: {str(error).strip()}") from None


def write_entry(name: str, weights: str | Path, *, sources: Sequence[str], license: str,
                metrics: Mapping[str, float] | None = None, metrics_from: str | Path | None = None,
                preprocess: Mapping[str, Any] | None = None,
                converter: str | None = None, default: bool = False, description: str | None = None,
                reference: str | None = None, reference_weights: str | Path | None = None,
                model_args: Mapping[str, Any] | None = None, out_dir: str | Path = ".",
                log: Callable[[str], None] = lambda _: None) -> Written:
    """Hash the weights, compute their reference outputs and write the manifest entry.

    Args:
        name: ``arch.tag`` of the new weight set (the architecture must be registered).
        weights: the file users will download (usually the output of ``mhub convert``).
        sources: where it will be served, in order of preference.
        license: licence identifier of the weights.
        metrics: e.g. ``{"top1": 76.1, "top5": 92.9}``; these win over ``metrics_from``.
        metrics_from: ``mhub eval --json`` output whose top-1/top-5 the entry records (it must have measured
            this very file when it names one).
        preprocess: overrides of :data:`DEFAULT_PREPROCESS`.
        converter: key map that turns a ``torch-pickle`` file into our layout at pull time.
        default: mark this tag as the architecture's default.
        description: free text; defaults to the provenance ``mhub convert`` recorded.
        reference: ``LIBRARY:NAME`` (``torchvision``, ``timm`` or a library a plugin registers) to take the
            reference outputs from that upstream implementation instead of from our model (see
            :mod:`mhub_tools.validate`).
        reference_weights: upstream checkpoint for such a reference.
        model_args: architecture arguments the weights need (``img_size = 384``); recorded in the entry.
        out_dir: a registry-like directory (created if needed).
        log: receives progress lines.

    Raises:
        ManifestError: the entry would not validate, or the output manifest already holds ``name``.
    """
    import torch

    from mhub._manifest import dump_manifest, parse_manifest
    from mhub.hub.convert import read_checkpoint
    from mhub.hub.integrity import sha256_file

    from .convert import apply_converter, infer_head
    from .reference import InputSpec, input_size, reference_input, save_reference
    from .validate import library_reference, load_model

    arch_name, dot, tag = name.partition(".")
    if not dot or not tag:
        raise ManifestError(f"'{name}': give the weight set as NAME.TAG (e.g. resnet50.mylab_in1k)")
    registry = mhub.get_registry()
    arch = registry.arch_for(name, **(model_args or {}))  # the model the reference outputs come from
    weights = Path(weights)
    fmt = checkpoint_format(weights)
    digest, size = sha256_file(weights)
    log(f"sha256 {digest}  size {size}  format {fmt}")
    if metrics_from is not None:
        metrics = {**measured_metrics(metrics_from, digest), **(metrics or {})}

    provenance = file_metadata(weights)
    if provenance.get("model") and provenance["model"].partition(".")[0] != arch.name:
        raise ConversionError(f"{weights} was converted for '{provenance['model']}', not '{arch.name}'")
    state = read_checkpoint(weights)
    if converter:
        state = apply_converter(registry.converter(converter), state)
    model = load_model(arch, state)
    num_classes, in_chans = infer_head(arch, state)

    pre = imaging.override(DEFAULT_PREPROCESS, preprocess)
    pre = {"resize": imaging.resolve(pre)["resize"], **pre}  # also refuses what predict would refuse
    if description is None and provenance.get("source_sha256"):
        description = (f"converted by mhub {provenance.get('mhub_version', '?')} with "
                       f"{provenance.get('converter', '?')} from a file with sha256 {provenance['source_sha256']}")
    out_dir = Path(out_dir)
    reference_rel = f"references/{arch.name}.{tag}.safetensors"
    entry: dict[str, Any] = {
        "model": arch.name, "tag": tag, "sources": list(sources), "sha256": digest, "size": size, "format": fmt,
        "license": license,
    }
    if converter:
        entry["converter"] = converter
    entry.update({"num_classes": num_classes, "reference": reference_rel})
    if default:
        entry["default"] = True
    if description:
        entry["description"] = description
    entry.update({"metrics": dict(metrics or {}), "preprocess": pre})
    if model_args:
        entry["model_args"] = dict(model_args)
    text = dump_manifest([entry])
    manifest_path = out_dir / f"{arch.family}.toml"
    parse_manifest(tomllib.loads(text), origin=str(manifest_path))  # fail before writing

    previous = manifest_path.read_text(encoding="utf-8") if manifest_path.exists() else None
    if previous is not None and any(spec.name == f"{arch.name}.{tag}" for spec in load_manifest(manifest_path)):
        raise ManifestError(f"{manifest_path} already has an entry for {arch.name}.{tag}")

    spec = InputSpec(input_size(pre), in_chans)
    if reference:
        ref = library_reference(reference, arch, state, spec, num_classes, reference_weights=reference_weights,
                                model_args=model_args, log=log)
        logits, producer = ref.logits, ref.metadata["producer"]
    else:
        with torch.no_grad():
            logits = model(reference_input(spec))
        producer = f"mhub {mhub.__version__} {arch.name} (cpu, fp32)"
    reference_path = save_reference(out_dir / reference_rel, logits, spec, model=f"{arch.name}.{tag}",
                                    producer=producer, weights_sha256=digest)
    log(f"reference outputs ({producer}) -> {reference_path}")

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text((previous.rstrip("\n") + "\n\n" if previous else "") + text, encoding="utf-8")
    try:
        load_manifest(manifest_path)
    except ManifestError:
        if previous is None:
            manifest_path.unlink()
        else:
            manifest_path.write_text(previous, encoding="utf-8")
        reference_path.unlink(missing_ok=True)
        raise
    return Written(manifest_path, reference_path, entry, text)
