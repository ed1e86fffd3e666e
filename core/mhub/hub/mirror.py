"""Mirrors: a directory tree any static HTTP server (or a shared filesystem) can serve to ``MHUB_ENDPOINT``.

Tree written by ``mhub mirror DIR [NAME...]``::

    DIR/blobs/sha256/<hex>          the file exactly as its source serves it
    DIR/names/<model.tag>.json      {"name", "sha256", "size", "filename"}

Clients fetch ``<endpoint>/blobs/sha256/<hex>`` first. For entries whose manifest knows only an upstream
prefix, the name index says which blob to fetch (its digest must extend that prefix); the bytes are then
held to the upstream prefix, never to the index's digest: a mirror cannot vouch for more than the manifest
does. The index is read with a bound on its size (1 MiB) and time (``MHUB_TIMEOUT``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .._errors import MhubError
from .._specs import WeightSpec
from .cache import HEX64, Cache


def blob_url(endpoint: str, digest: str) -> str:
    return f"{endpoint.rstrip('/')}/blobs/sha256/{digest}"


def names_url(endpoint: str, name: str) -> str:
    return f"{endpoint.rstrip('/')}/names/{name}.json"


def mirror_location(endpoint: str, spec: WeightSpec) -> str | None:
    """Which blob of the mirror holds a prefix-only entry (a digest extending its prefix), or None.

    Only a location: the caller still checks the bytes against the entry's own prefix.
    """
    from .sources import fetch_small

    try:
        data = json.loads(fetch_small(names_url(endpoint, spec.name)))
    except (MhubError, ValueError, OSError):
        return None
    digest = data.get("sha256") if isinstance(data, dict) else None
    if isinstance(digest, str) and HEX64.fullmatch(digest) and digest.startswith(spec.sha256_prefix or ""):
        return digest
    return None


def write_mirror(directory: str | os.PathLike, names: list[str] | tuple[str, ...] = (), *,
                 endpoint: str | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Copy weight files into a mirror tree; pull the named ones first (no names: all cached names).

    Blobs are hard-linked from the cache where possible. Returns one record per name written.
    """
    from .client import ensure_source, resolve_spec

    cache = Cache.current()
    root = Path(directory)
    records = []
    if names:
        for name in names:
            spec = resolve_spec(name)
            digest, size, _ = ensure_source(cache, spec, endpoint=endpoint, progress=progress)
            ref = cache.read_ref(spec.name) or {}
            records.append({"name": spec.name, "sha256": digest, "size": size,
                            "filename": ref.get("filename", "")})
    else:
        records = [{k: ref.get(k) for k in ("name", "sha256", "size", "filename")} for ref in cache.refs()
                   if isinstance(ref.get("size"), int) and cache.verified_blob(ref["sha256"], ref["size"])]
    for record in records:
        _place(cache.blob_path(record["sha256"]), root / "blobs" / "sha256" / record["sha256"], record["size"])
        target = root / "names" / f"{record['name']}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    return records


def _place(blob: Path, target: Path, size: int) -> None:
    if target.exists() and target.stat().st_size == size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(blob, tmp)
    except OSError:  # another filesystem
        shutil.copyfile(blob, tmp)
    os.replace(tmp, target)
