"""Mirrors: a tree any static HTTP server, shared filesystem or object store can serve to ``MHUB_ENDPOINT``.

Tree written by ``mhub mirror TARGET [NAME...]`` (TARGET: a folder, or object storage such as
``s3://bucket/prefix``, written through fsspec by :mod:`mhub.hub.objectstore`)::

    TARGET/blobs/sha256/<hex>          the file exactly as its source serves it
    TARGET/names/<model.tag>.json      {"name", "sha256", "size", "filename"}

A blob already there with the right size is not written again. Clients fetch
``<endpoint>/blobs/sha256/<hex>`` first (``MHUB_ENDPOINT=s3://bucket/prefix`` reads an object-store
mirror). For entries whose manifest knows only an upstream prefix, the name index says which blob to
fetch (its digest must extend that prefix); the bytes are then held to the upstream prefix, never to the
index's digest: a mirror cannot vouch for more than the manifest does. The index is read with a bound on
its size (1 MiB) and time (``MHUB_TIMEOUT``).
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


def write_mirror(target: str | os.PathLike, names: list[str] | tuple[str, ...] = (), *,
                 endpoint: str | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Copy weight files into a mirror tree; pull the named ones first (no names: all cached names).

    Args:
        target: a folder (or ``file://`` URL), where blobs are hard-linked from the cache when possible,
            or an object-storage URL (``s3://bucket/prefix``, any fsspec protocol), uploaded to.
        names: ``arch`` or ``arch.tag`` names to pull and write.
        endpoint: a mirror to pull missing files from.
        progress: show progress bars while pulling.

    Returns:
        One record per name written: ``{"name", "sha256", "size", "filename"}``.

    Raises:
        MhubError: the target is an HTTP or ``hf://`` URL (not writable); the errors of ``pull``.
        IntegrityError: a named entry gives only a sha256 prefix and ``MHUB_REQUIRE_FULL_HASH`` is on, as
            for ``pull``, cached or not (nothing is written).
        NetworkError: the object store's package is missing, or it refused a write or is unreachable.
    """
    from . import objectstore
    from .client import ensure_source, resolve_spec

    target = os.fspath(target)
    scheme = target.split("://", 1)[0].lower() if objectstore.is_url(target) else ""
    if scheme in ("http", "https", "hf"):
        raise MhubError(f"cannot write a mirror to {target}: write it to a folder that a web server serves, "
                        "or to object storage (s3://bucket/prefix)")
    if scheme:
        objectstore.filesystem(target)  # a missing package or an unknown protocol fails before any pull
    cache = Cache.current()
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
    root = None if scheme else objectstore.local_path(target)
    for record in records:
        blob, index = cache.blob_path(record["sha256"]), _index_bytes(record)
        if root is None:  # object storage publishes an object only once its upload completes
            objectstore.upload(blob, blob_url(target, record["sha256"]), record["size"])
            objectstore.write_bytes(names_url(target, record["name"]), index)
            continue
        _place(blob, root / "blobs" / "sha256" / record["sha256"], record["size"])
        path = root / "names" / f"{record['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(index)
        os.replace(tmp, path)
    return records


def _index_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8")


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
