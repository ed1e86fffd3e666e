"""Turn a downloaded checkpoint into safetensors in our layout, once per source digest and converter version.

Pickles are read only with ``torch.load(weights_only=True)`` (memory-mapped where the file allows),
passed through the entry's converter (``fn(state_dict) -> state_dict``) and written as safetensors, so
loading can memory-map them. Results are blobs like any other, indexed by
``converted/<source sha256>/<converter>@v<version>.json``.

A file's format is the manifest entry's ``format`` where there is one, else what its first bytes say
(:func:`checkpoint_format`); a file name's suffix is never consulted.
"""

from __future__ import annotations

import errno
import os
import re
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
    if done and cache.verified_blob(done["sha256"], done.get("size")):
        return _link(cache, spec.name, filename, done["sha256"]), label
    with cache.locked(f"convert-{source_digest}-{name}"):
        done = cache.read_conversion(source_digest, name, version)
        if not (done and cache.verified_blob(done["sha256"], done.get("size"))):
            tmp = cache.tmp_file(".safetensors")
            try:
                convert_file(cache.blob_path(source_digest), tmp, fmt=spec.format, converter=function,
                             what=f"{spec.name} ({label})",
                             metadata={"mhub.source_sha256": source_digest, "mhub.converter": name,
                                       "mhub.converter_version": str(version)})
                digest, size = sha256_file(tmp)
                cache.add_blob(tmp, digest)
                cache.stamp(digest)
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
    if not cache.name_points_at(name, filename, digest):  # absent, stale, or led out of the cache
        cache.link_name(name, filename, digest)
    return path


CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default container
PICKLE_PROTO = b"\x80"  # first opcode of a pickle (protocol 2+), torch's legacy format
# How safetensors' errors (Rust io::Error text) say ENOSPC / EDQUOT.
NO_SPACE_SIGNS = ("os error 28)", "os error 122)", "No space left on device", "Disk quota exceeded")
# Modules whose globals a tensor checkpoint legitimately names (torch's rebuild functions, OrderedDict).
TRUSTED_MODULES = ("torch", "collections", "_codecs")
# Module names weights_only reports for functions users know by another name.
MODULE_ALIASES = {"posix": "os", "nt": "os", "__builtin__": "builtins"}


def checkpoint_format(path: str | Path) -> str:
    """``"safetensors"`` or ``"torch-pickle"``, from the file's first bytes (its name is not consulted).

    A safetensors file starts with the 8-byte little-endian length of its JSON header, then ``{``; a torch
    checkpoint is a zip archive or (legacy format) a pickle.

    Raises:
        ConversionError: the file is missing, unreadable, or neither.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
            size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise ConversionError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(head) == 9 and head[8:] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if head.startswith((ZIP_MAGIC, PICKLE_PROTO)):
        return "torch-pickle"
    raise ConversionError(f"{path}: neither a safetensors file nor a torch checkpoint (it starts with "
                          f"{head[:8].hex() or 'nothing'})")


def read_safetensors(path: str | Path, what: object = None) -> "OrderedDict[str, Any]":
    """Key -> tensor of a safetensors file (views of one private memory map, in file order).

    Raises:
        ConversionError: the file is unreadable or malformed (its header, offsets or dtypes), whatever its
            hash: ``what`` (default the path) names it in the message.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return OrderedDict((key, handle.get_tensor(key)) for key in handle.keys())
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(f"{what or path}: not a readable safetensors file: {reason}") from None


def read_checkpoint(path: str | Path, fmt: str | None = None) -> "OrderedDict[str, Any]":
    """Read a state dict without running any code the file contains.

    Safetensors files are memory-mapped; pickles go through ``torch.load(weights_only=True)`` only
    (memory-mapped where the zip format allows), which refuses anything but tensors and plain containers.

    Args:
        path: the checkpoint.
        fmt: ``"safetensors"`` or ``"torch-pickle"`` (a manifest entry's ``format``); by default from the
            file's first bytes (:func:`checkpoint_format`).

    Returns:
        Key -> tensor in file order, with training containers unwrapped (see :func:`unwrap_state_dict`).

    Raises:
        ConversionError: missing or unreadable file, or a pickle that ``weights_only`` refuses (the message
            names the global it would have called, e.g. ``os.system``).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    fmt = fmt or checkpoint_format(path)
    if fmt == "safetensors":
        return read_safetensors(path)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it may not parse; a refusal below says what matters.
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            if path.name.endswith(".safetensors"):  # torch.load would pick its reader by that suffix
                with open(path, "rb") as handle:
                    state = torch.load(handle, map_location="cpu", weights_only=True)
            else:
                try:
                    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as error:
                    if "mmap" not in str(error):
                        raise
                    state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as error:
        raise ConversionError(f"{path}: refused: not a plain tensor checkpoint: {_refusal(error, path)}; "
                              "nothing in it was run") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot read checkpoint: {str(error).strip().splitlines()[0]}") from None
    return unwrap_state_dict(state, path)


def _refusal(error: Exception, path: Path) -> str:
    """What ``weights_only`` blocked, in a user's words: the global the pickle would call.

    torch's message mostly advises re-running with ``weights_only=False``, the one thing not to do with an
    untrusted file, and names only the first global it blocked, which may be an innocent one of torch's
    own; the pickle's opcodes (read, never run) show the foreign ones.
    """
    match = re.search(r"GLOBAL ([A-Za-z_][\w.]*)", str(error))
    blocked = match.group(1) if match else None
    foreign = [name for name in pickle_globals(path) if name.split(".")[0] not in TRUSTED_MODULES]
    if blocked is None or "." not in blocked or blocked.split(".")[0] in TRUSTED_MODULES:
        # torch named a builtin without its module, or one of its own globals: the pickle knows better
        named = [g for g in foreign if blocked and g.endswith(f".{blocked}")]
        blocked = (named or foreign or [blocked])[0]
    if blocked is None:
        return "torch.load(weights_only=True) refused it"
    module, _, function = blocked.rpartition(".")
    known = f"{MODULE_ALIASES[module]}.{function}" if module in MODULE_ALIASES else blocked
    shown = known if known == blocked else f"{known} ({blocked})"
    return f"it would call {shown}, which torch.load(weights_only=True) blocks"


def pickle_globals(path: str | Path, limit: int = 64 << 20) -> list[str]:
    """The ``module.name`` globals a checkpoint's pickle refers to, in order, found by reading its opcodes
    (``pickletools``; nothing is unpickled). Looks at ``data.pkl`` of a zip checkpoint, or the leading
    pickles of a legacy one; an unreadable stream yields what was found before the damage."""
    import io
    import pickletools
    import zipfile

    found: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((m for m in archive.infolist() if m.filename.endswith("data.pkl")), None)
                if member is None or member.file_size > limit:
                    return found
                streams = [archive.read(member)]
        else:
            with open(path, "rb") as handle:
                streams = [handle.read(limit)]
        for stream in streams:
            source = io.BytesIO(stream)
            for _ in range(5):  # legacy format: magic number, protocol, system info, then the object
                if source.tell() >= len(stream):
                    break
                _collect_globals(pickletools.genops(source), found)
    except Exception:  # noqa: BLE001 - a damaged stream: report what was read before it
        pass
    return found


def _collect_globals(opcodes, found: list[str]) -> None:
    strings: list[str] = []  # recent string pushes, for STACK_GLOBAL (module and name come from the stack)
    memo: dict[int, str] = {}
    for opcode, argument, _ in opcodes:
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            module, _, attribute = str(argument).partition(" ")
            found.append(f"{module}.{attribute}")
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(f"{strings[-2]}.{strings[-1]}")
        elif "UNICODE" in name or name.endswith("STRING"):
            strings.append(str(argument))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[int(argument)] = strings[-1]
        elif name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET") and int(argument) in memo:
            strings.append(memo[int(argument)])
        if name == "STOP":
            return


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


def save_safetensors(state: Mapping[str, Any], path: Path, metadata: dict[str, str] | None = None,
                     advice: str = "point MHUB_HOME at a larger disk") -> None:
    """Write tensors as safetensors; shared or non-contiguous tensors are made independent first.

    Raises:
        NoSpaceError: the disk filled up (``advice`` says what to do); nothing is left at ``path``.
        ConversionError: safetensors refused the tensors or the write; nothing is left at ``path``.
    """
    from safetensors import SafetensorError
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
    try:
        save_file(clean, str(path), metadata=metadata)
        _canonicalise_header(path)
    except (SafetensorError, OSError) as error:
        Path(path).unlink(missing_ok=True)
        text = str(error).strip()
        if is_no_space(error) or any(sign in text for sign in NO_SPACE_SIGNS):  # safetensors wraps the OSError
            raise no_space(Path(path), OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), advice=advice) from None
        reason = text.splitlines()[0] if text else type(error).__name__
        raise ConversionError(f"{path}: cannot write safetensors: {reason}") from None


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
