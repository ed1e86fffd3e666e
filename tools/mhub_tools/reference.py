"""The canonical reference input and reference-output files.

The reference input is a synthetic batch computed from integers alone, so every machine produces the same
bits without a random generator, an image decoder or a maths library. For batch index ``b``, channel ``c``,
row ``y`` and column ``x`` (all from 0)::

    tri(n, p) = (4 * |(n mod p) - p/2| - p) / p          # triangle wave of period p, in [-1, 1]
    value     = 1.2 * tri(x + 2y + 7c + 11b, 32)            # diagonal stripes
              + 0.8 * tri(3x - y + 5c + 3b, 24)             # stripes the other way
              + 0.5 * tri(x * y + 13c + 17b, 64)            # a chirp-like texture

Written over the common denominator, ``value = (72 N1 + 64 N2 + 15 N3) / 1920`` where ``N1 = 4|r1 - 16| - 32``,
``N2 = 4|r2 - 12| - 24``, ``N3 = 4|r3 - 32| - 64`` and ``r1``, ``r2``, ``r3`` are the three remainders above. The
numerator is an integer of at most 4800 in magnitude, so one float32 division (correctly rounded by IEEE 754)
gives the value: the batch is bit-identical everywhere. Values lie in [-2.5, 2.5], the range of an image
after ImageNet mean/std normalisation. The default batch has 2 images at the weight's input size
(``preprocess.crop``, else 224) and the weight's channel count.

A reference file is a small safetensors file holding ``logits`` (float32, ``[batch, num_classes]``) that a
trusted implementation produced for this input, with metadata saying which input (size, channels, batch and
the sha256 of its float32 bytes) and who produced it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mhub import ConversionError

INPUT_NAME = "mhub-synthetic-v1"
DEFAULT_BATCH = 2
DEFAULT_SIZE = 224


@dataclass(frozen=True)
class InputSpec:
    """Which reference input: spatial size, channels and batch."""

    size: int = DEFAULT_SIZE
    in_chans: int = 3
    batch: int = DEFAULT_BATCH


@dataclass
class Reference:
    """Reference logits plus the input they belong to and where they came from."""

    logits: Any  # torch.Tensor, float32 [batch, num_classes]
    input: InputSpec
    metadata: dict[str, str]


def input_size(preprocess: Mapping[str, Any] | None) -> int:
    """The input size a weight set expects: its crop as :func:`mhub.imaging.resolve` reads ``preprocess``
    (``crop``, else 224), so reference outputs, ``--image`` and ``mhub predict`` agree on it."""
    from mhub import imaging

    return imaging.resolve(preprocess)["crop"]


def reference_input(spec: InputSpec = InputSpec()):
    """The canonical reference batch (see the module docstring), float32 ``[batch, in_chans, size, size]``."""
    import torch

    b = torch.arange(spec.batch, dtype=torch.int64).view(-1, 1, 1, 1)
    c = torch.arange(spec.in_chans, dtype=torch.int64).view(1, -1, 1, 1)
    y = torch.arange(spec.size, dtype=torch.int64).view(1, 1, -1, 1)
    x = torch.arange(spec.size, dtype=torch.int64).view(1, 1, 1, -1)

    def triangle_numerator(n, period):  # period * tri(n, period), an integer
        return 4 * (torch.remainder(n, period) - period // 2).abs() - period

    n1 = triangle_numerator(x + 2 * y + 7 * c + 11 * b, 32)
    n2 = triangle_numerator(3 * x - y + 5 * c + 3 * b, 24)
    n3 = triangle_numerator(x * y + 13 * c + 17 * b, 64)
    numerator = 72 * n1 + 64 * n2 + 15 * n3
    return numerator.to(torch.float32) / 1920.0


def tensor_sha256(tensor) -> str:
    """sha256 of a tensor's contiguous little-endian bytes (identifies the exact input used)."""
    array = tensor.detach().cpu().contiguous().numpy()
    return hashlib.sha256(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def save_reference(path: str | Path, logits, spec: InputSpec, **metadata: str) -> Path:
    """Write a reference-output file (``logits`` plus metadata describing the input and its producer).

    Args:
        path: output ``.safetensors`` path; parent folders are created.
        logits: ``[batch, num_classes]`` outputs for :func:`reference_input` of ``spec``.
        spec: the input the logits belong to.
        **metadata: free-form provenance (``model``, ``producer``, ``weights_sha256`` ...).

    Returns:
        The path written.
    """
    import torch
    from safetensors.torch import save_file

    logits = logits.detach().to("cpu", torch.float32).contiguous()
    if logits.dim() != 2 or logits.shape[0] != spec.batch:
        raise ConversionError(f"reference logits must be [batch={spec.batch}, classes], got {list(logits.shape)}")
    meta = {
        "mhub_reference": "1",
        "input": INPUT_NAME,
        "input_size": str(spec.size),
        "in_chans": str(spec.in_chans),
        "batch": str(spec.batch),
        "input_sha256": tensor_sha256(reference_input(spec)),
        **{k: str(v) for k, v in metadata.items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"logits": logits}, str(path), metadata=meta)
    return path


def load_reference(path: str | Path) -> Reference:
    """Read a reference-output file and check that it was made for this module's reference input.

    Raises:
        ConversionError: not a reference file, or made for a different input (formula or size).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            if "logits" not in handle.keys():
                raise ConversionError(f"{path}: not a reference file (no 'logits' tensor)")
            logits = handle.get_tensor("logits")
    except (OSError, SafetensorError) as error:
        raise ConversionError(f"{path}: cannot read reference file: {error}") from error
    if metadata.get("input") != INPUT_NAME:
        raise ConversionError(f"{path}: made for input {metadata.get('input')!r}, expected {INPUT_NAME!r}")
    try:
        spec = InputSpec(int(metadata["input_size"]), int(metadata["in_chans"]), int(metadata["batch"]))
    except (KeyError, ValueError) as error:
        raise ConversionError(f"{path}: reference metadata lacks the input description ({error})") from error
    expected = tensor_sha256(reference_input(spec))
    if metadata.get("input_sha256") != expected:
        raise ConversionError(f"{path}: its input_sha256 does not match this mhub's reference input "
                              f"({metadata.get('input_sha256')} != {expected})")
    if logits.dim() != 2 or logits.shape[0] != spec.batch:
        raise ConversionError(f"{path}: logits have shape {list(logits.shape)}, expected [{spec.batch}, classes]")
    return Reference(logits.float(), spec, metadata)
