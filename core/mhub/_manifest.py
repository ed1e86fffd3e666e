"""Parse and validate TOML weight manifests (``[[weights]]`` arrays).

Every problem raises :class:`ManifestError` naming the file, the entry (``model.tag`` or its index) and
the field. Paths that a manifest controls (``filename``, ``reference``, source paths) may not escape the
cache or manifest directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from ._errors import ManifestError
from ._specs import WeightSpec

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_]*")  # used with fullmatch
# Names become file names in the cache (``refs/<model.tag>.json``); 100 + 1 + 100 + 5 stays under the 255 bytes
# every common filesystem allows for one path component.
MAX_NAME_LENGTH = 100
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PREFIX_RE = re.compile(r"^[0-9a-f]{8,63}$")
SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*)://")
FORMATS = ("safetensors", "torch-pickle")
PREPROCESS_FIELDS = {
    "resize": int,
    "crop": int,
    "interpolation": str,
    "mean": list,
    "std": list,
    "crop_pct": float,
    "crop_mode": str,
    "test_size": int,
    "test_crop_pct": float,
}
CROP_MODES = ("center", "squash", "border")  # timm's crop_mode values
FIELDS = {
    "model", "tag", "sources", "sha256", "sha256_prefix", "size", "filename", "format", "converter", "license",
    "metrics", "preprocess", "num_classes", "first_conv", "classifier", "reference", "default", "description",
    "model_args",
}
MODEL_ARG_TYPES = (bool, int, float, str, list)  # TOML values a builder argument may take
REQUIRED = ("model", "tag", "sources", "format", "license")


def load_manifest(path: str | Path, *, plugin: str = "") -> list[WeightSpec]:
    """Read one manifest file and return its validated entries.

    Raises:
        ManifestError: unreadable TOML, or any invalid entry (the message names file, entry and field).
    """
    path = Path(path)
    try:
        data = _read_toml(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: cannot read manifest: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path}: invalid TOML: {error}") from error
    return parse_manifest(data, origin=str(path), plugin=plugin)


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file through a JSON copy under ``MHUB_HOME/index``, keyed by path and content hash.

    ``tomllib`` is pure Python and the first-party manifests take tens of milliseconds to parse, a large part
    of ``mhub list``; reading the JSON copy takes under 1 ms. The copy is derived data in a directory other
    users may share, so it is used only when it records the sha256 of the manifest's current bytes (hashing
    them costs microseconds) and is a file of ours that nobody else can write (see :func:`_trusted_file`).
    Whatever it holds is validated like the TOML would be.
    """
    from .hub.cache import home

    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    resolved = str(path.resolve())
    copy = home() / "index" / (hashlib.sha256(resolved.encode()).hexdigest()[:32] + ".json")
    try:
        if _trusted_file(copy):
            record = json.loads(copy.read_text(encoding="utf-8"))
            if record["sha256"] == digest and record["path"] == resolved:
                return record["data"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no copy yet, or a stale or damaged one: parse the TOML
    data = tomllib.loads(raw.decode("utf-8"))
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f"{copy.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({"path": resolved, "sha256": digest, "data": data}), encoding="utf-8")
        os.chmod(partial, 0o644)
        os.replace(partial, copy)
    except (OSError, TypeError, ValueError):
        pass  # a read-only cache or a value JSON cannot hold (TOML dates): simply no copy
    return data


def _trusted_file(path: Path) -> bool:
    """Whether ``path`` is a regular file owned by this user and writable by nobody else.

    A copy another user of a shared cache planted (or swapped in through a group-writable directory) fails
    this test, so it cannot rewrite a manifest's sources. Where ownership is not reported (Windows) the
    content hash alone decides.
    """
    import stat as stat_module

    info = path.lstat()
    if not stat_module.S_ISREG(info.st_mode):
        return False
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        return False
    return True


def parse_manifest(data: dict[str, Any], *, origin: str, plugin: str = "") -> list[WeightSpec]:
    """Validate the parsed TOML of one manifest (see :func:`load_manifest`)."""
    unknown_top = set(data) - {"weights"}
    if unknown_top:
        raise ManifestError(f"{origin}: unknown top-level key(s) {sorted(unknown_top)}; expected [[weights]]")
    entries = data.get("weights", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ManifestError(f"{origin}: 'weights' must be an array of tables ([[weights]])")
    specs: list[WeightSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        spec = _parse_entry(entry, origin=origin, index=index, plugin=plugin)
        if spec.name in seen:
            raise ManifestError(
                f"{origin}: entry {index} ({spec.name}): duplicate tag '{spec.tag}', "
                f"already defined by entry {seen[spec.name]}"
            )
        seen[spec.name] = index
        specs.append(spec)
    return specs


def _parse_entry(entry: dict[str, Any], *, origin: str, index: int, plugin: str) -> WeightSpec:
    label = f"{entry.get('model', '?')}.{entry.get('tag', '?')}"

    def fail(field: str, problem: str) -> ManifestError:
        return ManifestError(f"{origin}: entry {index} ({label}): field '{field}': {problem}")

    for key in entry:
        if key not in FIELDS:
            raise fail(key, f"unknown field; known fields are {', '.join(sorted(FIELDS))}")
    for key in REQUIRED:
        if key not in entry:
            raise fail(key, "missing")

    def typed(field: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = entry.get(field, default)
        if value is not default and not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise fail(field, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
        return value

    for field in ("model", "tag"):
        value = typed(field, str)
        if not NAME_RE.fullmatch(value):
            raise fail(field, "must be lower-case letters, digits and '_'")
        if len(value) > MAX_NAME_LENGTH:
            raise fail(field, f"{len(value)} characters; at most {MAX_NAME_LENGTH} (names become cache file names)")

    sources = typed("sources", list)
    if not sources:
        raise fail("sources", "at least one source is required")
    for source in sources:
        if not isinstance(source, str):
            raise fail("sources", f"expected strings, got {source!r}")
        problem = source_problem(source)
        if problem:
            raise fail("sources", f"{source!r}: {problem}")

    sha256 = typed("sha256", str)
    prefix = typed("sha256_prefix", str)
    if sha256 is not None and not SHA256_RE.match(sha256):
        raise fail("sha256", f"{sha256!r} is not 64 lower-case hex digits")
    if prefix is not None and not PREFIX_RE.match(prefix):
        raise fail("sha256_prefix", f"{prefix!r} is not 8 to 63 lower-case hex digits")
    if sha256 is None and prefix is None:
        raise fail("sha256", "missing (give the full sha256, or sha256_prefix for an upstream file)")
    if sha256 and prefix and not sha256.startswith(prefix):
        raise fail("sha256_prefix", "does not match the start of sha256")

    fmt = typed("format", str)
    if fmt not in FORMATS:
        raise fail("format", f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")

    size = typed("size", int)
    if size is not None and size < 0:
        raise fail("size", "must be a non-negative number of bytes")
    num_classes = typed("num_classes", int, 1000)
    if num_classes < 0:
        raise fail("num_classes", "must be positive, or 0 for weights without a usable classifier")

    for field in ("filename", "reference"):
        value = typed(field, str)
        if value is not None:
            problem = relative_path_problem(value, allow_dirs=field == "reference")
            if problem:
                raise fail(field, f"{value!r}: {problem}")

    metrics = typed("metrics", dict, {})
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise fail(f"metrics.{key}", f"expected a number, got {value!r}")
    preprocess = {}
    for key, value in typed("preprocess", dict, {}).items():
        kind = PREPROCESS_FIELDS.get(key)
        if kind is None:
            raise fail(f"preprocess.{key}", f"unknown; expected one of {', '.join(PREPROCESS_FIELDS)}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(f"preprocess.{key}", f"expected {kind.__name__}, got {value!r}")
        if kind is list and (len(value) != 3 or not all(isinstance(v, (int, float)) for v in value)):
            raise fail(f"preprocess.{key}", "expected three numbers")
        if (kind is int and value < 1) or (key.endswith("crop_pct") and not 0 < value <= 1):
            raise fail(f"preprocess.{key}", f"{value!r} is out of range")
        if key == "crop_mode" and value not in CROP_MODES:
            raise fail(f"preprocess.{key}", f"{value!r}; expected one of {', '.join(CROP_MODES)}")
        preprocess[key] = value
    model_args = typed("model_args", dict, {})
    for key, value in model_args.items():
        if not key.isidentifier():
            raise fail(f"model_args.{key}", "not a valid keyword argument name")
        if key in ("num_classes", "in_chans", "pretrained"):
            raise fail(f"model_args.{key}", "is set by mhub.create, not by the manifest")
        if not isinstance(value, MODEL_ARG_TYPES):
            raise fail(f"model_args.{key}", f"expected a boolean, number, string or array, got {type(value).__name__}")

    return WeightSpec(
        model=entry["model"],
        tag=entry["tag"],
        sources=tuple(sources),
        license=typed("license", str),
        format=fmt,
        sha256=sha256,
        sha256_prefix=prefix,
        size=size,
        filename=entry.get("filename"),
        converter=typed("converter", str),
        metrics=dict(metrics),
        preprocess=dict(preprocess),
        num_classes=num_classes,
        first_conv=typed("first_conv", str),
        classifier=typed("classifier", str),
        reference=entry.get("reference"),
        model_args=dict(model_args),
        default=typed("default", bool, False),
        description=typed("description", str),
        origin=origin,
        plugin=plugin,
    )


def relative_path_problem(value: str, *, allow_dirs: bool = False) -> str | None:
    """Why ``value`` is not a safe relative file name (``None`` when it is)."""
    if not value or "\x00" in value:
        return "empty or contains NUL"
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return "absolute paths are not allowed"
    parts = re.split(r"[\\/]", value)
    if any(part in ("..", ".", "") for part in parts):
        return "'.', '..' or empty path segments would escape the directory"
    if not allow_dirs and len(parts) > 1:
        return "must be a plain file name without '/'"
    return None


def source_problem(source: str) -> str | None:
    """Why ``source`` is not an acceptable source URL (``None`` when it is)."""
    match = SCHEME_RE.match(source)
    if not match:
        return "not a URL with a scheme (https://, hf://, file://, ...)"
    path = unquote(urlsplit(source).path)
    if any(part == ".." for part in PurePosixPath(path).parts) or "\\..\\" in path:
        return "'..' path segments are not allowed"
    if match.group(1) == "hf" and len(source[len("hf://"):].split("@")[0].split("/")) < 3:
        return "hf:// sources are hf://org/repo/path[@revision]"
    return None


def default_filename(spec: WeightSpec) -> str:
    """The name a weight file gets in the cache: ``filename``, else the last segment of its first source
    (``model.tag`` when it has none) with the suffix of the entry's ``format``, whatever the URL's suffix:
    ``.safetensors``, or for ``torch-pickle`` ``.pth`` unless it already ends in ``.pth``/``.pt``/``.bin``/``.ckpt``.
    """
    if spec.filename:
        return spec.filename
    path = unquote(urlsplit(spec.sources[0]).path).split("@")[0]
    name = PurePosixPath(path).name
    if not name or relative_path_problem(name) is not None:
        name = spec.name
    pickles = (".pth", ".pt", ".bin", ".ckpt")
    suffix = PurePosixPath(name).suffix
    stem = name[:-len(suffix)] if suffix.lower() in (*pickles, ".safetensors") else name
    if spec.format == "safetensors":
        return f"{stem}.safetensors"
    return name if suffix.lower() in pickles else f"{stem}.pth"


def dump_manifest(specs: Iterable[WeightSpec | dict[str, Any]]) -> str:
    """Serialise entries as TOML ``[[weights]]`` tables (inverse of :func:`parse_manifest`)."""
    blocks = []
    for spec in specs:
        entry = spec.to_dict() if isinstance(spec, WeightSpec) else dict(spec)
        entry.pop("origin", None)
        scalars = [(k, v) for k, v in entry.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in entry.items() if isinstance(v, dict) and v]
        lines = ["[[weights]]"] + [f"{k} = {_toml_value(v)}" for k, v in scalars]
        for key, table in tables:
            lines.append(f"[weights.{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
