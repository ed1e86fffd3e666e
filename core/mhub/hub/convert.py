"""Turn a downloaded checkpoint into safetensors in our layout, once per source digest and converter version.

Pickles are read only with ``torch.load(weights_only=True)`` (memory-mapped where the file allows),
passed through the entry's converter (``fn(state_dict) -> state_dict``) and written as safetensors, so
loading can memory-map them. Results are blobs like any other, indexed by
``converted/<source sha256>/<converter>@v<version>.json``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .._errors import ConversionError
from .._manifest import default_filename
from .._specs import WeightSpec
from .cache import Cache, is_no_space, no_space
from .integrity import sha256_file

IDENTITY = "identity"  # the "converter" of a pickle already in our layout


def converter_for(spec: WeightSpec) -> tuple[str, int, Any]:
    """``(name, version, function)`` for the entry's converter (identity when none is named)."""
    if spec.converter is None:
        return IDENTITY, 1, None
    from .._registry import get_registry

    converter = get_registry().converter(spec.converter)
    return converter.name, converter.version, converter.function


def ensure_converted(cache: Cache, spec: WeightSpec, source_digest: str) -> tuple[Path, str]:
    """Have the converted safetensors of ``spec``'s source blob; return ``(path, "converter@vN")``."""
    name, version, function = converter_for(spec)
    label = f"{name}@v{version}"
    filename = f"{PurePosixPath(default_filename(spec)).stem}.{name}-v{version}.safetensors"
    done = cache.read_conversion(source_digest, name, version)
    if done and cache.has_blob(done["sha256"], done.get("size")):
        return _link(cache, spec.name, filename, done["sha256"]), label
    with cache.locked(f"convert-{source_digest}-{name}"):
        done = cache.read_conversion(source_digest, name, version)
        if not (done and cache.has_blob(done["sha256"], done.get("size"))):
            tmp = cache.tmp_file(".safetensors")
            try:
                convert_file(cache.blob_path(source_digest), tmp, fmt=spec.format, converter=function,
                             what=f"{spec.name} ({label})",
                             metadata={"mhub.source_sha256": source_digest, "mhub.converter": name,
                                       "mhub.converter_version": str(version)})
                digest, size = sha256_file(tmp)
                cache.add_blob(tmp, digest)
            except OSError as error:
                if is_no_space(error):
                    raise no_space(tmp, error) from error
                raise
            finally:
                tmp.unlink(missing_ok=True)
            done = {"source": source_digest, "converter": name, "version": version, "sha256": digest,
                    "size": size, "filename": filename}
            cache.write_json(cache.conversion_path(source_digest, name, version), done)
        return _link(cache, spec.name, filename, done["sha256"]), label


def _link(cache: Cache, name: str, filename: str, digest: str) -> Path:
    path = cache.name_path(name, filename)
    if not path.exists():
        cache.link_name(name, filename, digest)
    return path


PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def checkpoint_format(path: str | Path) -> str:
    """``"safetensors"`` or ``"torch-pickle"`` from a file name's suffix.

    Raises:
        ConversionError: any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix in PICKLE_SUFFIXES:
        return "torch-pickle"
    raise ConversionError(f"{path}: unknown checkpoint type {suffix!r}; expected .safetensors or "
                          + ", ".join(PICKLE_SUFFIXES))


def read_checkpoint(path: str | Path, fmt: str | None = None) -> "OrderedDict[str, Any]":
    """Read a state dict without running any code the file contains.

    Safetensors files are memory-mapped; pickles go through ``torch.load(weights_only=True)`` only
    (memory-mapped where the zip format allows), which refuses anything but tensors and plain containers.

    Args:
        path: the checkpoint.
        fmt: ``"safetensors"`` or ``"torch-pickle"``; by default from the suffix (:func:`checkpoint_format`).

    Returns:
        Key -> tensor in file order, with training containers unwrapped (see :func:`unwrap_state_dict`).

    Raises:
        ConversionError: missing or unreadable file, or a pickle that ``weights_only`` refuses.
    """
    import pickle

    import torch

    path = Path(path)
    fmt = fmt or checkpoint_format(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    if fmt == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                return OrderedDict((key, handle.get_tensor(key)) for key in handle.keys())
        except (SafetensorError, OSError) as error:
            raise ConversionError(f"{path}: not a readable safetensors file: {error}") from error
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it may not parse; a refusal below says what matters.
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as error:
                if "mmap" not in str(error):
                    raise
                state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as error:
        # weights_only's refusal spans many lines; the one naming the offending global is what matters.
        first = next((line.strip() for line in str(error).splitlines() if "Unsupported" in line), "")
        reason = first or str(error).strip().splitlines()[0]
        raise ConversionError(f"{path}: refused: not a plain tensor checkpoint (torch.load weights_only=True "
                              f"rejected it: {reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot read checkpoint: {str(error).strip().splitlines()[0]}") from None
    return unwrap_state_dict(state, path)


def unwrap_state_dict(state: Any, what: Any = "checkpoint") -> "OrderedDict[str, Any]":
    """The ``{name: tensor}`` mapping inside a checkpoint.

    Follows ``state_dict`` / ``model`` / ``model_state_dict`` / ``module`` keys while the mapping holds no
    tensors itself, drops non-tensor entries (epoch counters, optimiser settings), and strips the
    ``module.`` prefix that ``DataParallel`` adds to every key.

    Raises:
        ConversionError: no tensors found.
    """
    import torch

    depth = 0
    while isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()) and depth < 4:
        inner = next((state[k] for k in CONTAINER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state, depth = inner, depth + 1
    if isinstance(state, torch.nn.Module):  # not reachable from weights_only loads; in-process callers
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise ConversionError(f"{what}: holds a {type(state).__name__}, not a state dict")
    tensors = OrderedDict((str(k), v) for k, v in state.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise ConversionError(f"{what}: no tensors found (keys: {', '.join(map(str, list(state)[:8]))})")
    if all(k.startswith("module.") for k in tensors):
        tensors = OrderedDict((k[len("module."):], v) for k, v in tensors.items())
    return tensors


def convert_file(source: Path, target: Path, *, fmt: str, converter=None, what: str = "",
                 metadata: dict[str, str] | None = None) -> None:
    """Read ``source``, apply ``converter`` (a callable or ``"module:function"``), save safetensors."""
    from .._lazy import import_string

    state = read_checkpoint(source, fmt)
    if converter is not None:
        function = import_string(converter)
        try:
            state = function(state)
        except Exception as error:
            raise ConversionError(f"{what}: converter failed: {type(error).__name__}: {error}") from error
        state = unwrap_state_dict(state, f"{what}: converter output")
    save_safetensors(state, target, metadata=metadata)


def save_safetensors(state: Mapping[str, Any], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors; shared or non-contiguous tensors are made independent first."""
    from safetensors.torch import save_file

    seen: set[int] = set()
    clean = {}
    for key, tensor in state.items():
        tensor = tensor.detach()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen or not tensor.is_contiguous():  # safetensors refuses tensors sharing memory
            tensor = tensor.contiguous().clone()
        seen.add(storage)
        clean[key] = tensor
    save_file(clean, str(path), metadata=metadata)
    _canonicalise_header(path)


def _canonicalise_header(path: Path) -> None:
    """Rewrite the JSON header with sorted keys, so equal tensors and metadata give equal bytes.

    safetensors serialises ``__metadata__`` from a hash map whose order changes from run to run, which
    would give the same conversion a different sha256 each time. The sorted header has the same length
    (same content, same compact separators), so the tensor offsets are unchanged.
    """
    import json
    import struct

    with open(path, "r+b") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(canonical) > length:  # cannot happen for a header safetensors wrote; leave the file as it is
            return
        handle.seek(8)
        handle.write(canonical.ljust(length, b" "))  # the format allows trailing spaces in the header
