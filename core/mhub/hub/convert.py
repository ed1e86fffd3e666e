"""Turn a downloaded checkpoint into safetensors in our layout, once per source digest and converter version.

Pickles are read only with ``torch.load(weights_only=True)`` (memory-mapped where the file allows),
passed through the entry's converter (``fn(state_dict) -> state_dict``) and written as safetensors, so
loading can memory-map them. Results are blobs like any other, indexed by
``converted/<source sha256>/<converter>@v<version>.json``.
"""

from __future__ import annotations

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


def read_checkpoint(path: str | Path, fmt: str):
    """Read a state dict: safetensors, or a pickle through ``torch.load(weights_only=True)`` only.

    Common wrappers (``{"state_dict": ...}``, ``{"model": ...}``) are unwrapped.

    Raises:
        ConversionError: the file is not a loadable checkpoint (or needs unsafe unpickling).
    """
    import torch

    if fmt == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise ConversionError(f"{path}: not a readable safetensors file: {error}") from error
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as error:
        raise ConversionError(f"{path}: cannot be read with torch.load(weights_only=True) "
                              f"(pickles are never fully unpickled): {str(error).splitlines()[0]}") from error
    return unwrap_state_dict(state, path)


def unwrap_state_dict(state: Any, what: Any = "checkpoint") -> dict:
    """The ``{name: tensor}`` mapping inside a checkpoint (top level, or under state_dict/model)."""
    import torch

    if isinstance(state, Mapping) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = state.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{what}: expected a mapping of names to tensors, got {type(state).__name__}")
    return dict(state)


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
